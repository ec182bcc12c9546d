// A stable identity of a model, so a cloud and an edge can prove they run the same one.
//
// XXH3-128 over, in order: a format tag; the hyper-parameters (canonical text, floats in
// hexadecimal); the tokenizer's defining bytes; then for every tensor, sorted by name: its
// name, type, shape, byte size and content. Tensors up to 1 MiB are hashed whole; larger ones by
// 16 windows of 64 KiB spread evenly from the first byte to the last, so a multi-GB file costs
// about 1 MiB of reads per tensor instead of all of it. Different dtypes of one model therefore
// have different fingerprints: they compute different numbers.
#pragma once

#include "model/hparams.h"
#include "model/weight_source.h"

#include <string>

namespace ep {

std::string canonical_hparams(const HParams& hp);
// "xxh3-128:" followed by 32 hex digits.
std::string model_fingerprint(const WeightSource& source);

}  // namespace ep
