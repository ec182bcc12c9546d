// Where one sequence's own keys and values live while a forward pass runs: a contiguous cache
// (KvCache, one sequence at a time) or blocks of a shared pool (PagedSequenceKv, the serving
// engine). The layer loop writes each new token's K/V through write() and reads the sequence's
// whole K/V, in position order, through view().
#pragma once

#include <cstdint>
#include <utility>

namespace ep {

class SequenceKv {
 public:
  virtual ~SequenceKv() = default;
  // Stores the K and V rows ([n, row] f32) of own positions first .. first + n - 1.
  virtual void write(int64_t layer, int64_t first, int64_t n, const float* k, const float* v) = 0;
  // K and V of own positions 0 .. n - 1, contiguous [n, row]; valid until the next call.
  virtual std::pair<const float*, const float*> view(int64_t layer, int64_t n) = 0;
  virtual int64_t capacity() const = 0;  // own positions it can hold now
};

}  // namespace ep
