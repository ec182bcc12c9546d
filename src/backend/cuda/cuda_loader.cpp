// The CUDA entry points of the engine library: they open the backend plugin
// (libedgeprompt_cuda.so, built beside the edgeprompt binary when a CUDA compiler is found) the
// first time one is used and forward to it. A process that never asks for CUDA never maps cuBLAS;
// a build or machine without the plugin or a device gets one clear error.
#include "backend/cuda/cuda_engine.h"
#include "backend/cuda/engine_backend.h"
#include "core/error.h"

#include <dlfcn.h>

#include <filesystem>
#include <system_error>

namespace ep::cuda {
namespace {

struct Plugin {
  const PluginApi* api = nullptr;
  std::string why;  // why api is null
};

std::filesystem::path executable_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

Plugin load_plugin() {
  Plugin p;
  // Already in the process (a program linked against it, as the tests are), else beside the
  // binary or in the lib/ of an installation prefix.
  void* handle = dlopen(kPluginFile, RTLD_NOW | RTLD_NOLOAD);
  std::string where = kPluginFile;
  if (!handle) {
    const auto dir = executable_dir();
    std::string tried;
    for (const auto& candidate : {dir / kPluginFile, dir.parent_path() / "lib" / kPluginFile}) {
      std::error_code ec;
      if (!std::filesystem::exists(candidate, ec)) {
        tried += (tried.empty() ? "" : ", ") + candidate.string();
        continue;
      }
      where = candidate.string();
      handle = dlopen(where.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        const char* e = dlerror();
        p.why = fmt::format("the CUDA backend {} does not load: {}", where, e ? e : "?");
        return p;
      }
      break;
    }
    if (!handle) {
      p.why = fmt::format(
          "this build has no CUDA backend (no {}; it is built beside the binary when a CUDA "
          "compiler is found at configure time: install the CUDA toolkit and rebuild, or "
          "configure with -DEP_CUDA=ON)",
          tried);
      return p;
    }
  }
  using Entry = const PluginApi* (*)();
  const auto entry = reinterpret_cast<Entry>(dlsym(handle, kPluginEntry));
  const PluginApi* api = entry ? entry() : nullptr;
  if (!api) {
    p.why = fmt::format("{} is not an EdgePrompt CUDA backend (no {})", where, kPluginEntry);
    return p;
  }
  const PluginApi expected;
  if (api->interface_version != expected.interface_version ||
      api->model_size != expected.model_size || api->hparams_size != expected.hparams_size ||
      api->options_size != expected.options_size || api->chunk_size != expected.chunk_size) {
    p.why = fmt::format(
        "{} is from a different EdgePrompt build (interface {}, type sizes {}/{}/{}; this binary: "
        "{}, {}/{}/{}): rebuild both together",
        where, api->interface_version, api->model_size, api->hparams_size, api->options_size,
        expected.interface_version, expected.model_size, expected.hparams_size,
        expected.options_size);
    return p;
  }
  p.api = api;
  return p;
}

// Loaded once per process (thread-safe initialisation) and never changed afterwards; the plugin
// stays mapped for the life of the process, as engines may outlive any caller.
const Plugin& plugin() {
  static const Plugin p = load_plugin();
  return p;
}

}  // namespace

bool device_available(std::string* why) {
  const Plugin& p = plugin();
  if (!p.api) {
    if (why) *why = p.why;
    return false;
  }
  return p.api->device_available(why);
}

void require_device() {
  const Plugin& p = plugin();
  if (!p.api) fail("--device cuda: {}", p.why);
  std::string why;
  if (!p.api->device_available(&why)) fail("--device cuda: no usable CUDA device ({})", why);
}

Engine::Engine(const Model& model, EngineOptions options) {
  require_device();
  impl_.reset(plugin().api->create_from_model(model, options));
}

Engine::Engine(const HParams& hp, uint64_t seed, EngineOptions options) {
  require_device();
  impl_.reset(plugin().api->create_random(hp, seed, options));
}

Engine::~Engine() = default;

const HParams& Engine::hparams() const {
  const std::lock_guard lock(mutex_);
  return impl_->hparams();
}
int64_t Engine::weight_bytes() const {
  const std::lock_guard lock(mutex_);
  return impl_->weight_bytes();
}
std::string Engine::device_name() const {
  const std::lock_guard lock(mutex_);
  return impl_->device_name();
}
int Engine::open_sequence() {
  const std::lock_guard lock(mutex_);
  return impl_->open_sequence();
}
void Engine::close_sequence(int seq) {
  const std::lock_guard lock(mutex_);
  impl_->close_sequence(seq);
}
int64_t Engine::seq_len(int seq) const {
  const std::lock_guard lock(mutex_);
  return impl_->seq_len(seq);
}
void Engine::prefill(int seq, std::span<const int32_t> tokens, std::vector<float>* logits,
                     bool all_logits, const LayerSink& observer) {
  const std::lock_guard lock(mutex_);
  impl_->prefill(seq, tokens, logits, all_logits, observer);
}
void Engine::decode(std::span<const int> seqs, std::span<const int32_t> tokens,
                    std::vector<float>* logits, std::vector<int32_t>* greedy) {
  const std::lock_guard lock(mutex_);
  impl_->decode(seqs, tokens, logits, greedy);
}
void Engine::configure_pool(int64_t n_blocks, int64_t block_tokens) {
  const std::lock_guard lock(mutex_);
  impl_->configure_pool(n_blocks, block_tokens);
}
int64_t Engine::kv_block_bytes(int64_t block_tokens) const {
  const HParams& hp = impl_->hparams();
  return 2 * hp.n_layer * block_tokens * hp.n_head_kv * hp.head_dim * int64_t(sizeof(uint16_t));
}
uint64_t Engine::free_device_bytes() const {
  const std::lock_guard lock(mutex_);
  return impl_->free_device_bytes();
}
void Engine::step(std::span<const BatchChunk> chunks, std::vector<float>& logits,
                  std::vector<int32_t>* greedy, std::vector<LayerTiming>& timings) {
  const std::lock_guard lock(mutex_);
  impl_->step(chunks, logits, greedy, timings);
}
void Engine::set_sampleable(int64_t n, std::span<const int32_t> masked) {
  const std::lock_guard lock(mutex_);
  impl_->set_sampleable(n, masked);
}
double Engine::last_device_seconds() const {
  const std::lock_guard lock(mutex_);
  return impl_->last_device_seconds();
}
void Engine::set_profiling(bool on) {
  const std::lock_guard lock(mutex_);
  impl_->set_profiling(on);
}
std::vector<std::pair<std::string, double>> Engine::last_profile() const {
  const std::lock_guard lock(mutex_);
  return impl_->last_profile();
}

}  // namespace ep::cuda
