#include "runtime/step_forward.h"

namespace ep {
namespace {

class CpuStepForward final : public StepForward {
 public:
  CpuStepForward(const Model& model, ThreadPool& pool, kernels::Precision precision)
      : layers_(model, pool) {
    layers_.set_precision(precision);
  }
  bool host_kv() const override { return true; }
  bool forward(std::span<const BatchChunk> chunks, std::vector<float>& logits,
               std::vector<int32_t>*) override {
    layers_.forward(chunks, logits);
    return false;
  }
  const std::vector<LayerTiming>& last_timings() const override { return layers_.last_timings(); }

 private:
  BatchForward layers_;
};

}  // namespace

std::unique_ptr<StepForward> cpu_step_forward(const Model& model, ThreadPool& pool,
                                              kernels::Precision precision) {
  return std::make_unique<CpuStepForward>(model, pool, precision);
}

}  // namespace ep
