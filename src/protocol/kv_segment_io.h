// Glue between the wire format and in-memory KV segments.
#pragma once

#include "core/error.h"
#include "model/model.h"
#include "protocol/kv_wire.h"
#include "runtime/kv_segment.h"

#include <memory>
#include <string>

namespace ep {

// A header describing `tokens` computed by `model`.
KvStreamHeader make_kv_header(const Model& model, const std::string& fingerprint,
                              const std::string& prompt_id, uint64_t version,
                              const std::string& chat_template, std::vector<int32_t> tokens,
                              KvDtype dtype);

// A stream computed by another model, or shaped for another one.
class KvMismatch : public Error {
 public:
  using Error::Error;
};

// Checks that a stream's header fits `model` (fingerprint and shapes; KvMismatch naming the
// mismatch) and that its token ids are in the vocabulary (ep::Error).
void check_kv_header(const KvStreamHeader& h, const Model& model, const std::string& fingerprint);

// An empty segment shaped like the header, to be filled layer by layer.
std::shared_ptr<KvSegment> make_segment(const KvStreamHeader& h);

// Copies a parsed layer into the segment and marks it ready.
void publish(KvSegment& segment, const KvStreamParser::Layer& layer);

}  // namespace ep
