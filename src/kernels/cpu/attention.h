// Causal attention over one KV segment with online softmax, returning the log-sum-exp per query
// and head, and the exact merge of two segments' results (the cloud/edge fusion).
#pragma once

#include "core/thread_pool.h"

#include <cstdint>

namespace ep::kernels {

struct AttentionArgs {
  // Queries [n_q, n_head, head_dim]; query i sits at position q_pos0 + i.
  const float* q = nullptr;
  int64_t n_q = 0;
  int64_t q_pos0 = 0;
  // Keys and values [n_kv, n_head_kv, head_dim]; key j sits at position k_pos0 + j.
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t n_kv = 0;
  int64_t k_pos0 = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;  // n_head must be a multiple (grouped-query attention)
  int64_t head_dim = 0;
  float scale = 1.0f;  // usually 1/sqrt(head_dim)
  int64_t window = 0;  // > 0: query at p sees keys at p - window < pos <= p (sliding window)
  // Outputs: out [n_q, n_head, head_dim], lse [n_q, n_head] (natural log; -inf if no key visible,
  // with out = 0).
  float* out = nullptr;
  float* lse = nullptr;
};

// Keys at positions after a query are masked (causal); keys before the segment's start are
// simply absent, so a cloud segment is attended by passing its keys with k_pos0 = 0.
void attention(const AttentionArgs& args, ThreadPool& pool);

// Merges segment b into segment a in place: with w = 1 / (1 + exp(lse_b - lse_a)),
// out_a = w·out_a + (1-w)·out_b and lse_a = log(exp(lse_a) + exp(lse_b)), in fp32.
void merge_attention(float* out_a, float* lse_a, const float* out_b, const float* lse_b,
                     int64_t n_rows, int64_t head_dim);

}  // namespace ep::kernels
