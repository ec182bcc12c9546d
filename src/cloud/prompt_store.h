// The cloud's registered prompts: each one's text, tokens, version and KV stream, and their copy
// on disk (docs/cloud-api.md, "Persistence"), reloaded and verified at start.
#pragma once

#include "model/model.h"
#include "protocol/kv_wire.h"
#include "protocol/prompt_kv.h"

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace ep {

struct CloudPrompt {
  std::string tenant;  // "" without an auth file; a tenant sees only its own prompts
  std::string id;
  uint64_t version = 0;
  std::string text;
  std::string chat_template;
  std::vector<int32_t> tokens;
  std::shared_ptr<PromptKv> kv;  // filled by the prefill
  double prefill_s = 0;
};

class PromptStore {
 public:
  // `dir` empty: memory only. Otherwise the prompts persisted there are loaded (a file that fails
  // its checksums, or was computed by another model, is reported and ignored).
  PromptStore(std::filesystem::path dir, const Model& model, std::string fingerprint,
              KvDtype kv_dtype);

  struct Registration {
    CloudPrompt prompt;
    bool created = false;  // false: the same prompt was registered already (same version)
  };
  // Each tenant's prompts are apart: the same id of two tenants is two prompts.
  // A new version when the tokens or template differ from the registered one (or it failed).
  // Versions of an id never repeat, across deletes and (with a directory) restarts: the highest
  // one given is on disk before put returns, so an edge's cached KV of an old version is never
  // taken for a new prompt.
  Registration put(const std::string& tenant, const std::string& id, std::string text,
                   std::string chat_template, std::vector<int32_t> tokens);
  std::optional<CloudPrompt> find(const std::string& tenant, const std::string& id) const;
  std::vector<CloudPrompt> list(const std::string& tenant) const;
  // False: no such prompt. The files are gone from the disk (directory synced) when it returns,
  // so a restart does not bring the prompt back.
  bool erase(const std::string& tenant, const std::string& id);

  // After a prefill: records its time and writes the KV, then the metadata, atomically.
  void complete(const CloudPrompt& prompt, double prefill_s);

  size_t size() const;
  size_t ready() const;  // prompts whose KV is complete

 private:
  // A prompt's key in the map and its files' names: "TENANT~ID" ('~' is in neither), or ID.
  static std::string key_of(const std::string& tenant, const std::string& id);
  std::filesystem::path meta_path(const std::string& key) const;
  std::filesystem::path kv_path(const std::string& key) const;
  void reload();
  // Gives `key` its next version and records it (versions.json) before anyone sees it.
  uint64_t next_version_locked(const std::string& key, uint64_t current);
  void sync_dir() const;

  std::filesystem::path dir_;
  const Model& model_;
  std::string fingerprint_;
  KvDtype kv_dtype_;
  mutable std::mutex mutex_;
  std::map<std::string, CloudPrompt> prompts_;
  std::map<std::string, uint64_t> last_version_;  // by key, deleted prompts' too
};

}  // namespace ep
