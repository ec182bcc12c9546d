#include "edge/edge_kv_cache.h"

#include "core/atomic_file.h"
#include "core/error.h"
#include "protocol/kv_segment_io.h"
#include "protocol/kv_wire.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

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
  const std::filesystem::path lock_path = dir_ / kLock;
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    fail("--kv-cache-dir {}: cannot create {}: {}", dir_.string(), kLock, std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    fail("--kv-cache-dir {} is in use by another edge (it holds {}); give each edge its own",
         dir_.string(), lock_path.string());
  }
  {
    std::ifstream manifest(dir_ / kManifest);
    for (std::string name; std::getline(manifest, name);) {
      if (!name.empty()) owned_.insert(name);
    }
  }
  std::vector<std::filesystem::directory_entry> files;
  std::set<std::string> present;
  size_t strangers = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    const std::string name = e.path().filename().string();
    const auto ext = e.path().extension();
    if (ext == ".tmp" && owned_.count(e.path().stem().string())) {
      std::filesystem::remove(e.path());  // our write, interrupted
    } else if (ext == ".epkv" && owned_.count(name)) {
      files.push_back(e);
      present.insert(name);
    } else if (ext == ".epkv" || ext == ".tmp") {
      ++strangers;
    }
  }
  if (strangers > 0) {
    fmt::print(stderr, "edge: leaving {} file(s) in {} that this cache did not write\n", strangers,
               dir_.string());
  }
  std::erase_if(owned_, [&](const std::string& n) { return !present.count(n); });
  // Oldest first, so the most recently written end up most recently used.
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.last_write_time() < b.last_write_time(); });
  std::lock_guard lock(mutex_);
  for (const auto& f : files) {
    try {
      const std::string stream = read_whole_file(f.path());
      KvStreamParser parser;
      parser.feed(stream);
      if (!parser.finished()) fail("truncated");
      const auto& h = *parser.header();
      auto seg = load(stream, h.prompt_id, h.prompt_version);
      if (f.path().filename() != key_of(h.prompt_id, h.prompt_version) + ".epkv")
        fail("holds prompt '{}' version {}", h.prompt_id, h.prompt_version);
      insert_locked({key_of(h.prompt_id, h.prompt_version), seg, f.path()});
    } catch (const std::exception& ex) {
      fmt::print(stderr, "edge: dropping cached KV {}: {}\n", f.path().string(), ex.what());
      std::filesystem::remove(f.path());
      owned_.erase(f.path().filename().string());
    }
  }
  write_manifest_locked();
}

EdgeKvCache::~EdgeKvCache() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

void EdgeKvCache::write_manifest_locked() const {
  std::string text;
  for (const auto& n : owned_) text += n + "\n";
  write_atomically(dir_ / kManifest, text);
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
  std::lock_guard lock(mutex_);
  std::filesystem::path file;
  if (!dir_.empty()) {
    file = dir_ / (key_of(id, version) + ".epkv");
    // Listed before it is written: a write cut short leaves a temporary file the next start
    // knows to be this cache's.
    if (owned_.insert(file.filename().string()).second) write_manifest_locked();
    write_atomically(file, stream);  // never a half-written cache file
  }
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
    if (!victim.file.empty()) {
      std::filesystem::remove(victim.file);
      owned_.erase(victim.file.filename().string());
      write_manifest_locked();
    }
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
