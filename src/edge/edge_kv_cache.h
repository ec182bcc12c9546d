// The edge's own cache of cloud-prompt KV: complete segments keyed by (prompt id, version),
// least-recently-used eviction under a byte budget, persisted as checksummed stream files that
// are verified (checksums, model fingerprint) before use after a restart.
//
// The cache owns only what it wrote: a manifest in its directory lists its files, and only those
// are loaded, dropped or evicted (a stranger's files, even *.epkv ones, are left alone). A lock
// file held for the cache's life keeps a second edge off the same directory.
#pragma once

#include "model/model.h"
#include "runtime/kv_segment.h"

#include <cstdint>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace ep {

class EdgeKvCache {
 public:
  // Throws ep::Error when another process holds the directory.
  EdgeKvCache(std::filesystem::path dir, uint64_t max_bytes, const Model& model,
              std::string fingerprint);
  ~EdgeKvCache();
  EdgeKvCache(const EdgeKvCache&) = delete;
  EdgeKvCache& operator=(const EdgeKvCache&) = delete;

  static constexpr const char* kManifest = ".edgeprompt-edge-manifest";
  static constexpr const char* kLock = ".edgeprompt-edge.lock";

  std::shared_ptr<const KvSegment> get(const std::string& id, uint64_t version);
  // `stream` is a complete KV stream as received; it is parsed and verified again here.
  void put(const std::string& id, uint64_t version, const std::string& stream);
  uint64_t bytes() const;
  size_t size() const;

 private:
  struct Entry {
    std::string key;
    std::shared_ptr<const KvSegment> segment;
    std::filesystem::path file;
  };
  std::shared_ptr<const KvSegment> load(const std::string& stream, const std::string& id,
                                        uint64_t version) const;
  void insert_locked(Entry e);
  void write_manifest_locked() const;

  std::filesystem::path dir_;
  uint64_t max_bytes_;
  const Model& model_;
  std::string fingerprint_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // front: most recent
  std::map<std::string, std::list<Entry>::iterator> index_;
  uint64_t bytes_ = 0;
  std::set<std::string> owned_;  // file names this cache wrote (the manifest's lines)
  int lock_fd_ = -1;
};

}  // namespace ep
