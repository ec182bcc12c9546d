// The edge's own cache of cloud-prompt KV: complete segments keyed by (prompt id, version),
// least-recently-used eviction under a byte budget, persisted as checksummed stream files that
// are verified (checksums, model fingerprint) before use after a restart.
#pragma once

#include "model/model.h"
#include "runtime/kv_segment.h"

#include <cstdint>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace ep {

class EdgeKvCache {
 public:
  EdgeKvCache(std::filesystem::path dir, uint64_t max_bytes, const Model& model,
              std::string fingerprint);

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

  std::filesystem::path dir_;
  uint64_t max_bytes_;
  const Model& model_;
  std::string fingerprint_;
  mutable std::mutex mutex_;
  std::list<Entry> lru_;  // front: most recent
  std::map<std::string, std::list<Entry>::iterator> index_;
  uint64_t bytes_ = 0;
};

}  // namespace ep
