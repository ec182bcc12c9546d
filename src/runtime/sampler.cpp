#include "runtime/sampler.h"

#include "core/error.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ep {
namespace {

int32_t argmax(std::span<const float> v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

}  // namespace

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {
  const SamplerParams& p = params_;
  if (!std::isfinite(p.temperature)) fail("temperature {} is not a number", p.temperature);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) fail("top-p {} is not in (0, 1]", p.top_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) fail("min-p {} is not in [0, 1]", p.min_p);
  if (!(p.repeat_penalty > 0.0f) || !std::isfinite(p.repeat_penalty)) {
    fail("repeat penalty {} must be positive", p.repeat_penalty);
  }
  if (!std::isfinite(p.presence_penalty)) fail("presence penalty is not a number");
}

void Sampler::accept(int32_t id) {
  recent_.push_back(id);
  if (params_.penalty_last_n >= 0) {
    while (recent_.size() > size_t(params_.penalty_last_n)) recent_.pop_front();
  }
}

std::vector<float> Sampler::penalised(std::span<const float> logits) const {
  std::vector<float> out(logits.begin(), logits.end());
  if (params_.repeat_penalty == 1.0f && params_.presence_penalty == 0.0f) return out;
  // Each distinct token is penalised once, however often it appeared.
  std::vector<int32_t> seen(recent_.begin(), recent_.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (const int32_t id : seen) {
    if (id < 0 || size_t(id) >= out.size()) continue;
    float& l = out[size_t(id)];
    l = l > 0 ? l / params_.repeat_penalty : l * params_.repeat_penalty;
    l -= params_.presence_penalty;
  }
  return out;
}

std::vector<float> Sampler::distribution(std::span<const float> logits) const {
  if (logits.empty()) fail("sampler: no logits");
  const std::vector<float> l = penalised(logits);
  std::vector<float> probs(l.size(), 0.0f);
  if (params_.temperature <= 0.0f) {
    probs[size_t(argmax(l))] = 1.0f;
    return probs;
  }
  // Candidates sorted by logit (ties by id, so the order and hence the draw are deterministic).
  std::vector<int32_t> ids(l.size());
  std::iota(ids.begin(), ids.end(), 0);
  size_t n = ids.size();
  const auto by_logit = [&](int32_t a, int32_t b) {
    return l[size_t(a)] > l[size_t(b)] || (l[size_t(a)] == l[size_t(b)] && a < b);
  };
  if (params_.top_k > 0 && size_t(params_.top_k) < n) {
    n = size_t(params_.top_k);
    std::partial_sort(ids.begin(), ids.begin() + std::ptrdiff_t(n), ids.end(), by_logit);
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  // Softmax with temperature over the survivors, in double for stable tails.
  std::vector<double> p(n);
  const double top = double(l[size_t(ids[0])]) / params_.temperature;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    p[i] = std::exp(double(l[size_t(ids[i])]) / params_.temperature - top);
    sum += p[i];
  }
  for (double& x : p) x /= sum;
  // Top-p: the shortest head whose mass reaches p (always at least one token).
  if (params_.top_p < 1.0f) {
    double mass = 0;
    size_t keep = 0;
    while (keep < n) {
      mass += p[keep++];
      if (mass >= double(params_.top_p)) break;
    }
    n = keep;
  }
  // Min-p: relative to the most likely token (p[0]).
  if (params_.min_p > 0.0f) {
    const double floor = double(params_.min_p) * p[0];
    size_t keep = 1;
    while (keep < n && p[keep] >= floor) ++keep;
    n = keep;
  }
  double kept = 0;
  for (size_t i = 0; i < n; ++i) kept += p[i];
  for (size_t i = 0; i < n; ++i) probs[size_t(ids[i])] = float(p[i] / kept);
  return probs;
}

double Sampler::uniform() {
  return double(rng_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (params_.temperature <= 0.0f) return argmax(penalised(logits));
  const std::vector<float> probs = distribution(logits);
  const double u = uniform();
  double acc = 0;
  int32_t last = -1;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0.0f) continue;
    acc += double(probs[i]);
    last = int32_t(i);
    if (u < acc) return last;
  }
  return last;  // rounding left u just above the total
}

}  // namespace ep
