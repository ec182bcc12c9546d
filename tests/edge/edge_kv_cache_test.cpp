// The edge's KV cache: complete cloud-prompt streams keyed by (prompt id, version), least
// recently used eviction under a byte budget, persisted as checksummed files and verified again
// (checksums, model fingerprint) when a new cache reloads the directory. Real streams for a
// fixture model, with deterministic pseudo-random K/V.
#include "edge/edge_kv_cache.h"
#include "core/error.h"
#include "model/fingerprint.h"
#include "model/model.h"
#include "protocol/kv_segment_io.h"
#include "protocol/kv_wire.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ep {
namespace {

namespace fs = std::filesystem;
const fs::path kModels = test::fixtures_dir() / "models";
constexpr int64_t kTokens = 8;

// A complete stream and the K/V it was encoded from ([layer] -> [n_tokens * row]).
struct Stream {
  std::string bytes;
  std::vector<std::vector<float>> k, v;
};

struct Fixture {
  std::unique_ptr<Model> model = load_model(kModels / "llama-gqa");
  std::string fingerprint = model_fingerprint(*model->source);
  // Bytes one cached entry holds: K and V of every layer, f32.
  uint64_t entry_bytes =
      2ull * uint64_t(model->hp.n_layer * kTokens * model->hp.n_head_kv * model->hp.head_dim) *
      sizeof(float);

  Stream stream(const std::string& id, uint64_t version, KvDtype dtype = KvDtype::F32,
                uint32_t seed = 1) const {
    return make_stream(*model, fingerprint, id, version, dtype, seed);
  }

  static Stream make_stream(const Model& m, const std::string& fp, const std::string& id,
                            uint64_t version, KvDtype dtype, uint32_t seed) {
    std::vector<int32_t> tokens;
    for (int64_t i = 0; i < kTokens; ++i) tokens.push_back(int32_t((seed * 131 + i * 17) % 1000));
    const KvStreamHeader h = make_kv_header(m, fp, id, version, "chatml", tokens, dtype);
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist;
    const size_t n = size_t(kTokens) * h.n_kv_heads * h.head_dim;
    Stream s;
    s.bytes = encode_kv_header(h);
    s.k.resize(h.n_layers);
    s.v.resize(h.n_layers);
    for (uint32_t l = 0; l < h.n_layers; ++l) {
      s.k[l].resize(n);
      s.v[l].resize(n);
      for (auto& x : s.k[l]) x = dist(rng);
      for (auto& x : s.v[l]) x = dist(rng);
    }
    for (uint32_t l = h.n_layers; l-- > 0;)  // layers in any order: last first
      s.bytes += encode_kv_layer(h, l, s.k[l].data(), s.v[l].data());
    s.bytes += encode_kv_end(h);
    return s;
  }
};

// The cache's file for an entry (edge_kv_cache.cpp: "<id>.v<version>.epkv").
fs::path file_of(const fs::path& dir, const std::string& id, uint64_t version) {
  return dir / (id + ".v" + std::to_string(version) + ".epkv");
}

// The directory's files but the cache's own bookkeeping (its manifest and lock file).
std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name != EdgeKvCache::kManifest && name != EdgeKvCache::kLock) out.insert(name);
  }
  return out;
}

// f16 keeps 11 significant bits (relative error at most 2^-11); values near zero become
// subnormals with an absolute step of 2^-24.
void expect_segment(const KvSegment& seg, const Stream& s, KvDtype dtype) {
  ASSERT_EQ(seg.n_layers(), int64_t(s.k.size()));
  ASSERT_EQ(seg.n_tokens(), kTokens);
  ASSERT_TRUE(seg.complete());
  const size_t n = s.k[0].size();
  ASSERT_EQ(size_t(seg.n_tokens() * seg.row_size()), n);
  size_t bad = 0;
  for (size_t l = 0; l < s.k.size(); ++l) {
    for (size_t i = 0; i < n; ++i) {
      const float want_k = s.k[l][i], want_v = s.v[l][i];
      const float got_k = seg.k(int64_t(l))[i], got_v = seg.v(int64_t(l))[i];
      if (dtype == KvDtype::F32) {
        bad += got_k != want_k || got_v != want_v;
      } else {
        const auto tol = [](float x) { return std::max(std::fabs(x) / 2048.0f, 6e-8f); };
        bad += std::fabs(got_k - want_k) > tol(want_k) || std::fabs(got_v - want_v) > tol(want_v);
      }
    }
  }
  EXPECT_EQ(bad, 0u);
}

// Makes `path` look written `seconds` ago, so reload order does not hang on timestamp resolution.
void set_age(const fs::path& path, int seconds) {
  fs::last_write_time(path, fs::file_time_type::clock::now() - std::chrono::seconds(seconds));
}

TEST(EdgeKvCache, PutThenGetReturnsTheEncodedKv) {
  Fixture f;
  test::ScratchDir dir;
  EdgeKvCache cache(dir.path(), 1 << 20, *f.model, f.fingerprint);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  const Stream exact = f.stream("exact", 1, KvDtype::F32, 1);
  const Stream half = f.stream("half", 2, KvDtype::F16, 2);
  cache.put("exact", 1, exact.bytes);
  cache.put("half", 2, half.bytes);
  const auto a = cache.get("exact", 1);
  const auto b = cache.get("half", 2);
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  expect_segment(*a, exact, KvDtype::F32);
  expect_segment(*b, half, KvDtype::F16);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.bytes(), 2 * f.entry_bytes);
  EXPECT_EQ(a->bytes(), f.entry_bytes);
  // Persisted byte for byte as received.
  EXPECT_EQ(test::read_file(file_of(dir.path(), "exact", 1)), exact.bytes);
  EXPECT_EQ(test::read_file(file_of(dir.path(), "half", 2)), half.bytes);
}

TEST(EdgeKvCache, UnknownIdsAndOtherVersionsAreMisses) {
  Fixture f;
  EdgeKvCache cache("", 1 << 20, *f.model, f.fingerprint);
  cache.put("bank", 3, f.stream("bank", 3).bytes);
  EXPECT_TRUE(cache.get("bank", 3));
  EXPECT_FALSE(cache.get("bank", 2));
  EXPECT_FALSE(cache.get("bank", 4));
  EXPECT_FALSE(cache.get("shop", 3));
  EXPECT_FALSE(cache.get("", 0));
}

TEST(EdgeKvCache, AThirdPutEvictsTheLeastRecentlyUsed) {
  Fixture f;
  test::ScratchDir dir;
  EdgeKvCache cache(dir.path(), 2 * f.entry_bytes, *f.model, f.fingerprint);
  cache.put("a", 1, f.stream("a", 1, KvDtype::F16, 1).bytes);
  cache.put("b", 1, f.stream("b", 1, KvDtype::F16, 2).bytes);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.bytes(), 2 * f.entry_bytes);
  const auto held = cache.get("a", 1);                         // "a" becomes the most recent...
  cache.put("a", 1, f.stream("a", 1, KvDtype::F16, 1).bytes);  // ...and so does a re-put
  cache.put("b", 1, f.stream("b", 1, KvDtype::F16, 2).bytes);  // "b" the most recent again
  EXPECT_EQ(cache.size(), 2u);                                 // replaced, not added
  EXPECT_EQ(cache.bytes(), 2 * f.entry_bytes);

  cache.put("c", 1, f.stream("c", 1, KvDtype::F16, 3).bytes);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.bytes(), 2 * f.entry_bytes);
  EXPECT_FALSE(cache.get("a", 1));
  EXPECT_TRUE(cache.get("b", 1));
  EXPECT_TRUE(cache.get("c", 1));
  EXPECT_EQ(files_in(dir.path()), (std::set<std::string>{"b.v1.epkv", "c.v1.epkv"}));
  // A segment already handed out stays valid after its entry is evicted.
  ASSERT_TRUE(held);
  expect_segment(*held, f.stream("a", 1, KvDtype::F16, 1), KvDtype::F16);
}

TEST(EdgeKvCache, GetRefreshesRecencySoTheOtherEntryIsEvicted) {
  Fixture f;
  test::ScratchDir dir;
  EdgeKvCache cache(dir.path(), 2 * f.entry_bytes, *f.model, f.fingerprint);
  cache.put("a", 1, f.stream("a", 1, KvDtype::F32, 1).bytes);
  cache.put("b", 1, f.stream("b", 1, KvDtype::F32, 2).bytes);
  ASSERT_TRUE(cache.get("a", 1));
  cache.put("c", 1, f.stream("c", 1, KvDtype::F32, 3).bytes);
  EXPECT_FALSE(cache.get("b", 1));
  EXPECT_TRUE(cache.get("a", 1));
  EXPECT_TRUE(cache.get("c", 1));
  EXPECT_FALSE(fs::exists(file_of(dir.path(), "b", 1)));
  EXPECT_TRUE(fs::exists(file_of(dir.path(), "a", 1)));
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.bytes(), 2 * f.entry_bytes);
}

TEST(EdgeKvCache, AnEntryOverTheWholeBudgetIsNotKept) {
  Fixture f;
  test::ScratchDir dir;
  EdgeKvCache cache(dir.path(), f.entry_bytes - 1, *f.model, f.fingerprint);
  cache.put("big", 1, f.stream("big", 1).bytes);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_FALSE(cache.get("big", 1));
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(EdgeKvCache, ANewCacheOverTheSameDirectoryServesWhatWasPutBefore) {
  Fixture f;
  test::ScratchDir dir;
  const Stream a = f.stream("a", 1, KvDtype::F16, 1), b = f.stream("b", 4, KvDtype::F32, 2);
  {
    EdgeKvCache cache(dir.path(), 1 << 20, *f.model, f.fingerprint);
    cache.put("b", 4, b.bytes);  // written first
    cache.put("a", 1, a.bytes);  // written last
  }
  set_age(file_of(dir.path(), "b", 4), 20);
  set_age(file_of(dir.path(), "a", 1), 10);
  // Restart with room for two: both come back, the most recently written as the most recent.
  EdgeKvCache restarted(dir.path(), 2 * f.entry_bytes, *f.model, f.fingerprint);
  EXPECT_EQ(restarted.size(), 2u);
  EXPECT_EQ(restarted.bytes(), 2 * f.entry_bytes);
  restarted.put("c", 1, f.stream("c", 1, KvDtype::F16, 3).bytes);  // evicts the oldest: "b"
  EXPECT_FALSE(restarted.get("b", 4));
  EXPECT_FALSE(fs::exists(file_of(dir.path(), "b", 4)));
  const auto got_a = restarted.get("a", 1);
  ASSERT_TRUE(got_a);
  expect_segment(*got_a, a, KvDtype::F16);

  // And the other way round: "b" alone, reloaded bit for bit.
  test::ScratchDir dir2;
  {
    EdgeKvCache cache(dir2.path(), 1 << 20, *f.model, f.fingerprint);
    cache.put("b", 4, b.bytes);
  }
  EdgeKvCache again(dir2.path(), 1 << 20, *f.model, f.fingerprint);
  const auto got_b = again.get("b", 4);
  ASSERT_TRUE(got_b);
  expect_segment(*got_b, b, KvDtype::F32);
}

TEST(EdgeKvCache, ReloadWithASmallerBudgetKeepsTheMostRecentlyWritten) {
  Fixture f;
  test::ScratchDir dir;
  {
    EdgeKvCache cache(dir.path(), 1 << 20, *f.model, f.fingerprint);
    for (const char* id : {"x", "y", "z"}) cache.put(id, 1, f.stream(id, 1).bytes);
  }
  set_age(file_of(dir.path(), "y", 1), 30);  // oldest
  set_age(file_of(dir.path(), "z", 1), 20);
  set_age(file_of(dir.path(), "x", 1), 10);  // newest
  EdgeKvCache small(dir.path(), f.entry_bytes, *f.model, f.fingerprint);
  EXPECT_EQ(small.size(), 1u);
  EXPECT_TRUE(small.get("x", 1));
  EXPECT_EQ(files_in(dir.path()), (std::set<std::string>{"x.v1.epkv"}));
}

TEST(EdgeKvCache, CorruptAndForeignFilesAreDroppedAtReload) {
  Fixture f;
  test::ScratchDir dir;
  const Stream good = f.stream("good", 1, KvDtype::F16, 1);
  {
    EdgeKvCache cache(dir.path(), 1 << 20, *f.model, f.fingerprint);
    cache.put("good", 1, good.bytes);
    for (const char* id : {"flipped", "foreign", "cut", "empty"})
      cache.put(id, 1, f.stream(id, 1, KvDtype::F16, 2).bytes);
  }
  // The cache's own files, damaged after it wrote them. One bit flipped in the middle of a
  // layer payload:
  const fs::path flipped = file_of(dir.path(), "flipped", 1);
  std::string bytes = test::read_file(flipped);
  bytes[bytes.size() / 2] = char(bytes[bytes.size() / 2] ^ 0x01);
  test::write_file(flipped, bytes);
  // a well-formed stream of the same shape computed by another model:
  const auto other = load_model(kModels / "qwen2-bias");
  ASSERT_EQ(other->hp.n_layer, f.model->hp.n_layer);
  ASSERT_EQ(other->hp.n_head_kv, f.model->hp.n_head_kv);
  ASSERT_EQ(other->hp.head_dim, f.model->hp.head_dim);
  const std::string other_fp = model_fingerprint(*other->source);
  ASSERT_NE(other_fp, f.fingerprint);
  test::write_file(file_of(dir.path(), "foreign", 1),
                   Fixture::make_stream(*other, other_fp, "foreign", 1, KvDtype::F16, 4).bytes);
  // a truncated stream, an empty file, and the temporary file of a write cut short (listed in
  // the manifest, as put() lists a file before writing it).
  const std::string cut = f.stream("cut", 1).bytes;
  test::write_file(file_of(dir.path(), "cut", 1), cut.substr(0, cut.size() - 5));
  test::write_file(file_of(dir.path(), "empty", 1), "");
  test::write_file(dir / "half.v1.epkv.tmp", cut.substr(0, 100));
  std::string manifest = test::read_file(dir / EdgeKvCache::kManifest);
  test::write_file(dir / EdgeKvCache::kManifest, manifest + "half.v1.epkv\n");
  test::write_file(dir / "notes.txt", "not a cache file");

  EdgeKvCache reloaded(dir.path(), 1 << 20, *f.model, f.fingerprint);
  EXPECT_EQ(reloaded.size(), 1u);
  EXPECT_EQ(reloaded.bytes(), f.entry_bytes);
  EXPECT_FALSE(reloaded.get("flipped", 1));
  EXPECT_FALSE(reloaded.get("foreign", 1));
  EXPECT_FALSE(reloaded.get("cut", 1));
  const auto g = reloaded.get("good", 1);
  ASSERT_TRUE(g);
  expect_segment(*g, good, KvDtype::F16);
  EXPECT_EQ(files_in(dir.path()), (std::set<std::string>{"good.v1.epkv", "notes.txt"}));
  EXPECT_EQ(test::read_file(dir / EdgeKvCache::kManifest), "good.v1.epkv\n");
}

TEST(EdgeKvCache, FilesItDidNotWriteAreLeftAlone) {
  Fixture f;
  test::ScratchDir dir;
  // Someone else's files in the directory, cache-like ones included: a valid stream of this
  // very model, a temporary file, anything.
  const Stream theirs = f.stream("theirs", 1, KvDtype::F16, 3);
  test::write_file(file_of(dir.path(), "theirs", 1), theirs.bytes);
  test::write_file(dir / "upload.v1.epkv.tmp", "partial");
  test::write_file(dir / "broken.v1.epkv", "not a stream");
  {
    EdgeKvCache cache(dir.path(), 1 << 20, *f.model, f.fingerprint);
    EXPECT_EQ(cache.size(), 0u);
    EXPECT_FALSE(cache.get("theirs", 1));  // never served: the cache did not receive it
    cache.put("ours", 1, f.stream("ours", 1).bytes);
  }
  EdgeKvCache again(dir.path(), 1 << 20, *f.model, f.fingerprint);
  EXPECT_EQ(again.size(), 1u);
  EXPECT_TRUE(again.get("ours", 1));
  EXPECT_EQ(files_in(dir.path()), (std::set<std::string>{"theirs.v1.epkv", "upload.v1.epkv.tmp",
                                                         "broken.v1.epkv", "ours.v1.epkv"}));
  EXPECT_EQ(test::read_file(file_of(dir.path(), "theirs", 1)), theirs.bytes);
}

TEST(EdgeKvCache, ASecondCacheOnTheSameDirectoryIsRefused) {
  Fixture f;
  test::ScratchDir dir;
  EdgeKvCache first(dir.path(), 1 << 20, *f.model, f.fingerprint);
  try {
    EdgeKvCache second(dir.path(), 1 << 20, *f.model, f.fingerprint);
    ADD_FAILURE() << "two caches share " << dir.path();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("in use by another edge"), std::string::npos) << e.what();
  }
}

TEST(EdgeKvCache, BadStreamsAreRefusedAndLeaveTheCacheUnchanged) {
  Fixture f;
  test::ScratchDir dir;
  EdgeKvCache cache(dir.path(), 1 << 20, *f.model, f.fingerprint);
  const Stream kept = f.stream("kept", 1);
  cache.put("kept", 1, kept.bytes);
  const std::string s = f.stream("bank", 2).bytes;
  const auto other = load_model(kModels / "qwen2-bias");
  const std::string foreign =
      Fixture::make_stream(*other, model_fingerprint(*other->source), "bank", 2, KvDtype::F16, 5)
          .bytes;
  const auto other_shape = load_model(kModels / "mistral-mha");  // 2 layers x 4 kv heads
  const std::string misshapen =
      Fixture::make_stream(*other_shape, f.fingerprint, "bank", 2, KvDtype::F16, 6).bytes;
  std::string flipped = s;
  flipped[flipped.size() / 3] = char(flipped[flipped.size() / 3] ^ 0x40);

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"another prompt id", f.stream("shop", 2).bytes},
      {"another version", f.stream("bank", 3).bytes},
      {"truncated", s.substr(0, s.size() - 1)},
      {"only the header", s.substr(0, 120)},
      {"empty", ""},
      {"corrupt", flipped},
      {"another model", foreign},
      {"another shape", misshapen},
      {"not a stream", "hello, world"},
  };
  for (const auto& [what, stream] : bad) {
    SCOPED_TRACE(what);
    EXPECT_THROW(cache.put("bank", 2, stream), Error);
    EXPECT_FALSE(cache.get("bank", 2));
    EXPECT_EQ(cache.size(), 1u);
    EXPECT_EQ(cache.bytes(), f.entry_bytes);
    EXPECT_EQ(files_in(dir.path()), (std::set<std::string>{"kept.v1.epkv"}));
  }
  const auto k = cache.get("kept", 1);
  ASSERT_TRUE(k);
  expect_segment(*k, kept, KvDtype::F32);
  EXPECT_NO_THROW(cache.put("bank", 2, s));  // the good one still goes in
  EXPECT_EQ(cache.size(), 2u);
}

TEST(EdgeKvCache, ABudgetOfZeroCachesNothing) {
  Fixture f;
  test::ScratchDir dir;
  EdgeKvCache cache(dir.path(), 0, *f.model, f.fingerprint);
  cache.put("a", 1, f.stream("a", 1).bytes);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.bytes(), 0u);
  EXPECT_FALSE(cache.get("a", 1));
  EXPECT_TRUE(files_in(dir.path()).empty());
}

TEST(EdgeKvCache, AMemoryOnlyCacheWorks) {
  Fixture f;
  EdgeKvCache cache("", 2 * f.entry_bytes, *f.model, f.fingerprint);
  const Stream a = f.stream("a", 1, KvDtype::F16, 1);
  cache.put("a", 1, a.bytes);
  cache.put("b", 1, f.stream("b", 1, KvDtype::F16, 2).bytes);
  ASSERT_TRUE(cache.get("a", 1));
  cache.put("c", 1, f.stream("c", 1, KvDtype::F16, 3).bytes);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_FALSE(cache.get("b", 1));
  const auto got = cache.get("a", 1);
  ASSERT_TRUE(got);
  expect_segment(*got, a, KvDtype::F16);
  EXPECT_THROW(cache.put("d", 1, "garbage"), Error);
  EXPECT_EQ(cache.size(), 2u);
}

}  // namespace
}  // namespace ep
