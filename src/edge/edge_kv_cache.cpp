#include "edge/edge_kv_cache.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "protocol/kv_segment_io.h"
#include "protocol/kv_wire.h"

#include <fmt/format.h>

#include <algorithm>

namespace ep {
namespace {

std::string key_of(const std::string& id, uint64_t version) {
  return fmt::format("{}.v{}", id, version);
}

}  // namespace

EdgeKvCache::EdgeKvCache(std::filesystem::path dir, uint64_t max_bytes, const Model& model,
                         std::string fingerprint)
    : dir_(std::move(dir)),
      max_bytes_(max_bytes),
      model_(model),
      fingerprint_(std::move(fingerprint)) {
  if (dir_.empty()) return;
  std::filesystem::create_directories(dir_);
  std::vector<std::filesystem::directory_entry> files;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    if (e.path().extension() == ".tmp") std::filesystem::remove(e.path());  // an interrupted write
    if (e.path().extension() == ".epkv") files.push_back(e);
  }
  // Oldest first, so the most recently written end up most recently used.
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.last_write_time() < b.last_write_time(); });
  for (const auto& f : files) {
    try {
      const std::string stream = read_whole_file(f.path());
      KvStreamParser parser;
      parser.feed(stream);
      if (!parser.finished()) fail("truncated");
      const auto& h = *parser.header();
      auto seg = load(stream, h.prompt_id, h.prompt_version);
      std::lock_guard lock(mutex_);
      insert_locked({key_of(h.prompt_id, h.prompt_version), seg, f.path()});
    } catch (const std::exception& ex) {
      fmt::print(stderr, "edge: dropping cached KV {}: {}\n", f.path().string(), ex.what());
      std::filesystem::remove(f.path());
    }
  }
}

std::shared_ptr<const KvSegment> EdgeKvCache::load(const std::string& stream, const std::string& id,
                                                   uint64_t version) const {
  KvStreamParser parser;
  parser.feed(stream);
  if (!parser.finished()) fail("KV stream is truncated");
  const KvStreamHeader& h = *parser.header();
  check_kv_header(h, model_, fingerprint_);
  if (h.prompt_id != id || h.prompt_version != version) fail("KV stream is for another prompt");
  auto seg = make_segment(h);
  for (const auto& l : parser.take_layers()) publish(*seg, l);
  return seg;
}

std::shared_ptr<const KvSegment> EdgeKvCache::get(const std::string& id, uint64_t version) {
  std::lock_guard lock(mutex_);
  const auto it = index_.find(key_of(id, version));
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->segment;
}

void EdgeKvCache::put(const std::string& id, uint64_t version, const std::string& stream) {
  auto seg = load(stream, id, version);  // verified even when nothing is kept
  if (max_bytes_ == 0) return;
  std::filesystem::path file;
  if (!dir_.empty()) {
    file = dir_ / (key_of(id, version) + ".epkv");
    write_atomically(file, stream);  // never a half-written cache file
  }
  std::lock_guard lock(mutex_);
  insert_locked({key_of(id, version), std::move(seg), file});
}

void EdgeKvCache::insert_locked(Entry e) {
  if (auto it = index_.find(e.key); it != index_.end()) {
    bytes_ -= it->second->segment->bytes();
    lru_.erase(it->second);
    index_.erase(it);
  }
  bytes_ += e.segment->bytes();
  lru_.push_front(std::move(e));
  index_[lru_.front().key] = lru_.begin();
  while (bytes_ > max_bytes_ && !lru_.empty()) {
    const Entry& victim = lru_.back();
    bytes_ -= victim.segment->bytes();
    if (!victim.file.empty()) std::filesystem::remove(victim.file);
    index_.erase(victim.key);
    lru_.pop_back();
  }
}

uint64_t EdgeKvCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

size_t EdgeKvCache::size() const {
  std::lock_guard lock(mutex_);
  return lru_.size();
}

}  // namespace ep
