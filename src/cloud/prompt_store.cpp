#include "cloud/prompt_store.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "protocol/kv_segment_io.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

namespace ep {

using json = nlohmann::json;

PromptStore::PromptStore(std::filesystem::path dir, const Model& model, std::string fingerprint,
                         KvDtype kv_dtype)
    : dir_(std::move(dir)),
      model_(model),
      fingerprint_(std::move(fingerprint)),
      kv_dtype_(kv_dtype) {
  if (dir_.empty()) return;
  std::filesystem::create_directories(dir_);
  reload();
}

std::string PromptStore::key_of(const std::string& tenant, const std::string& id) {
  return tenant.empty() ? id : tenant + "~" + id;
}

std::filesystem::path PromptStore::meta_path(const std::string& key) const {
  return dir_ / (key + ".json");
}

std::filesystem::path PromptStore::kv_path(const std::string& key) const {
  return dir_ / (key + ".epkv");
}

namespace {

constexpr const char* kVersionsFile = "versions.json";

}  // namespace

void PromptStore::reload() {
  if (const auto versions = dir_ / kVersionsFile; std::filesystem::exists(versions)) {
    try {
      last_version_ = json::parse(read_whole_file(versions)).get<std::map<std::string, uint64_t>>();
    } catch (const std::exception& ex) {
      // Unreadable: the prompts' own versions below are a floor; a new version may then repeat
      // one of a deleted prompt, so say so.
      fmt::print(stderr, "cloud: {} unreadable ({}); versions continue from the prompts on disk\n",
                 versions.string(), ex.what());
    }
  }
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    if (e.path().extension() != ".json" || e.path().filename() == kVersionsFile) continue;
    try {
      const json meta = json::parse(read_whole_file(e.path()));
      CloudPrompt p;
      p.tenant = meta.value("tenant", std::string());
      p.id = meta.at("id").get<std::string>();
      p.version = meta.at("version").get<uint64_t>();
      p.text = meta.at("text").get<std::string>();
      p.chat_template = meta.at("chat_template").get<std::string>();
      if (meta.at("fingerprint") != fingerprint_) fail("computed by another model");
      const std::string key = key_of(p.tenant, p.id);
      p.kv = PromptKv::from_bytes(read_whole_file(kv_path(key)));  // verifies every checksum
      check_kv_header(p.kv->header(), model_, fingerprint_);
      if (p.kv->header().prompt_version != p.version || p.kv->header().prompt_id != p.id) {
        fail("KV file does not match its metadata");
      }
      p.tokens = p.kv->header().tokens;
      last_version_[key] = std::max(last_version_[key], p.version);
      prompts_[key] = std::move(p);
    } catch (const std::exception& ex) {
      fmt::print(stderr, "cloud: ignoring cached prompt {}: {}\n", e.path().string(), ex.what());
    }
  }
}

PromptStore::Registration PromptStore::put(const std::string& tenant, const std::string& id,
                                           std::string text, std::string chat_template,
                                           std::vector<int32_t> tokens) {
  const std::string key = key_of(tenant, id);
  std::lock_guard lock(mutex_);
  const auto it = prompts_.find(key);
  if (it != prompts_.end() && it->second.tokens == tokens &&
      it->second.chat_template == chat_template && it->second.kv->error().empty()) {
    return {it->second, false};  // same prompt: same version, no new computation
  }
  CloudPrompt p;
  p.tenant = tenant;
  p.id = id;
  p.version = next_version_locked(key, it == prompts_.end() ? 0 : it->second.version);
  p.text = std::move(text);
  p.chat_template = std::move(chat_template);
  p.tokens = std::move(tokens);
  p.kv = std::make_shared<PromptKv>(
      make_kv_header(model_, fingerprint_, p.id, p.version, p.chat_template, p.tokens, kv_dtype_));
  prompts_[key] = p;
  return {p, true};
}

uint64_t PromptStore::next_version_locked(const std::string& key, uint64_t current) {
  uint64_t& last = last_version_[key];
  last = std::max(last, current) + 1;
  if (!dir_.empty()) write_atomically(dir_ / kVersionsFile, json(last_version_).dump());
  return last;
}

void PromptStore::sync_dir() const {
  const int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail("{}: cannot open the directory to sync it", dir_.string());
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail("{}: cannot sync the directory", dir_.string());
}

std::optional<CloudPrompt> PromptStore::find(const std::string& tenant,
                                             const std::string& id) const {
  std::lock_guard lock(mutex_);
  const auto it = prompts_.find(key_of(tenant, id));
  if (it == prompts_.end()) return std::nullopt;
  return it->second;
}

std::vector<CloudPrompt> PromptStore::list(const std::string& tenant) const {
  std::lock_guard lock(mutex_);
  std::vector<CloudPrompt> out;
  for (const auto& [key, p] : prompts_) {
    if (p.tenant == tenant) out.push_back(p);
  }
  return out;
}

bool PromptStore::erase(const std::string& tenant, const std::string& id) {
  const std::string key = key_of(tenant, id);
  {
    std::lock_guard lock(mutex_);
    if (prompts_.erase(key) == 0) return false;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    // Metadata first: without it a left-over KV file is never loaded.
    std::filesystem::remove(meta_path(key), ec);
    std::filesystem::remove(kv_path(key), ec);
    sync_dir();
  }
  return true;
}

void PromptStore::complete(const CloudPrompt& prompt, double prefill_s) {
  const std::string key = key_of(prompt.tenant, prompt.id);
  const auto current = [&] {
    std::lock_guard lock(mutex_);
    const auto it = prompts_.find(key);
    return it != prompts_.end() && it->second.version == prompt.version;
  };
  if (!current()) return;  // deleted or replaced while it was computed: nothing to keep
  if (!dir_.empty()) {
    // KV first, metadata last: a crash in between leaves no metadata pointing at a bad file.
    // A write that fails (a full disk) leaves neither file: the prompt is then served from
    // memory only, as the caller reports.
    try {
      write_atomically(kv_path(key), prompt.kv->all_bytes());
      write_atomically(meta_path(key), json{{"tenant", prompt.tenant},
                                            {"id", prompt.id},
                                            {"version", prompt.version},
                                            {"text", prompt.text},
                                            {"chat_template", prompt.chat_template},
                                            {"fingerprint", fingerprint_}}
                                           .dump());
    } catch (...) {
      std::error_code ec;
      std::filesystem::remove(kv_path(key), ec);
      throw;
    }
    if (!current()) {  // deleted while being written
      std::error_code ec;
      std::filesystem::remove(meta_path(key), ec);
      std::filesystem::remove(kv_path(key), ec);
      return;
    }
  }
  std::lock_guard lock(mutex_);
  if (auto it = prompts_.find(key); it != prompts_.end() && it->second.version == prompt.version) {
    it->second.prefill_s = prefill_s;
  }
}

size_t PromptStore::size() const {
  std::lock_guard lock(mutex_);
  return prompts_.size();
}

size_t PromptStore::ready() const {
  std::lock_guard lock(mutex_);
  size_t n = 0;
  for (const auto& [id, p] : prompts_) n += p.kv->complete();
  return n;
}

}  // namespace ep
