// The CUDA backend's entry points in a build without a CUDA compiler: each fails with one clear
// error, so `--device cuda` says what is wrong instead of crashing.
#include "backend/cuda/cuda_engine.h"
#include "core/error.h"

namespace ep::cuda {

namespace {
[[noreturn]] void no_backend() {
  fail(
      "--device cuda: this build has no CUDA backend (no CUDA compiler was found when it was "
      "configured; rebuild with the CUDA toolkit installed, or with -DEP_CUDA=ON)");
}
}  // namespace

bool device_available(std::string* why) {
  if (why) *why = "this build has no CUDA backend";
  return false;
}

void require_device() {
  no_backend();
}

struct Engine::Impl {};

Engine::Engine(const Model&, EngineOptions) {
  no_backend();
}
Engine::Engine(const HParams&, uint64_t, EngineOptions) {
  no_backend();
}
Engine::~Engine() = default;
const HParams& Engine::hparams() const {
  no_backend();
}
int64_t Engine::weight_bytes() const {
  no_backend();
}
std::string Engine::device_name() const {
  no_backend();
}
int Engine::open_sequence() {
  no_backend();
}
void Engine::close_sequence(int) {
  no_backend();
}
int64_t Engine::seq_len(int) const {
  no_backend();
}
void Engine::prefill(int, std::span<const int32_t>, std::vector<float>*, bool,
                     const LayerObserver&) {
  no_backend();
}
void Engine::decode(std::span<const int>, std::span<const int32_t>, std::vector<float>*,
                    std::vector<int32_t>*) {
  no_backend();
}
double Engine::last_device_seconds() const {
  no_backend();
}
void Engine::set_profiling(bool) {
  no_backend();
}
std::vector<std::pair<std::string, double>> Engine::last_profile() const {
  no_backend();
}

}  // namespace ep::cuda
