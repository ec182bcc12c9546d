// Layers of one prompt's KV becoming ready one by one while readers wait on them: the state that
// the cloud's encoded stream (protocol/prompt_kv.h) and the edge's decoded segment
// (runtime/kv_segment.h) share. A producer marks layers ready in any order, or fails the whole
// stream, and every waiter then receives that error; nobody busy-waits.
//
// The payload lives beside it: a producer writes a layer's data before mark_ready(), a reader
// reads it after its wait returned, and the stream's mutex orders the two.
#pragma once

#include "core/error.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace ep {

// What a waiter receives when the producer failed (a dropped or corrupt stream, a failed prefill).
class LayerStreamError : public Error {
 public:
  using Error::Error;
};

class LayerStream {
 public:
  explicit LayerStream(int64_t n_layers);

  int64_t n_layers() const { return n_layers_; }

  // Producer side. mark_ready throws ep::Error for a layer out of range; the first error wins.
  void mark_ready(int64_t layer);
  void set_error(const std::string& message);

  // Blocks until `layer` is ready and returns true, or returns false once `timeout` has passed;
  // throws LayerStreamError when the stream failed before the layer was ready.
  bool wait(int64_t layer,
            std::chrono::nanoseconds timeout = std::chrono::nanoseconds::max()) const;
  bool ready(int64_t layer) const;
  bool complete() const;      // every layer ready
  std::string error() const;  // empty while the stream has not failed

 private:
  void check_layer(int64_t layer) const;

  int64_t n_layers_;
  mutable std::mutex mutex_;
  mutable std::condition_variable ready_cv_;
  std::vector<bool> ready_;
  int64_t n_ready_ = 0;
  std::string error_;
};

}  // namespace ep
