// Layers becoming ready one by one while readers wait on them: the LayerStream state itself, the
// edge's decoded KvSegment built on it, and the cloud's encoded PromptKv stream built on it
// (ready / complete / error, blocking waits woken by another thread, timeouts, range checks, and
// the PromptKv byte round trip).
#include "runtime/layer_stream.h"
#include "core/error.h"
#include "protocol/kv_wire.h"
#include "protocol/prompt_kv.h"
#include "runtime/kv_segment.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace ep {
namespace {

using namespace std::chrono_literals;

// The message of the ep::Error that `f` throws ("" if it throws none, which fails the test).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ep::Error thrown";
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// LayerStream

TEST(LayerStream, MarkReadyMakesExactlyThatLayerReady) {
  LayerStream s(3);
  EXPECT_EQ(s.n_layers(), 3);
  EXPECT_FALSE(s.complete());
  s.mark_ready(1);
  EXPECT_FALSE(s.ready(0));
  EXPECT_TRUE(s.ready(1));
  EXPECT_FALSE(s.ready(2));
  EXPECT_FALSE(s.complete());
  EXPECT_EQ(s.error(), "");
}

TEST(LayerStream, CompleteOnlyOnceEveryLayerIsReadyInAnyOrder) {
  LayerStream s(3);
  s.mark_ready(2);
  s.mark_ready(2);  // twice counts once
  s.mark_ready(0);
  EXPECT_FALSE(s.complete());
  s.mark_ready(1);
  EXPECT_TRUE(s.complete());
  for (int64_t l = 0; l < 3; ++l) EXPECT_TRUE(s.wait(l, 0ns)) << l;
}

TEST(LayerStream, AStreamOfNoLayersIsCompleteAndANegativeCountIsRefused) {
  EXPECT_TRUE(LayerStream(0).complete());
  EXPECT_THROW(LayerStream(-1), Error);
}

TEST(LayerStream, WaitReturnsOnceAnotherThreadMarksTheLayer) {
  LayerStream s(2);
  std::atomic<bool> returned{false};
  bool result = false;
  std::thread waiter([&] {
    result = s.wait(1);
    returned = true;
  });
  s.mark_ready(0);  // another layer does not release the waiter
  EXPECT_FALSE(s.wait(1, 20ms));
  EXPECT_FALSE(returned.load());
  s.mark_ready(1);
  waiter.join();
  EXPECT_TRUE(returned.load());
  EXPECT_TRUE(result);
}

TEST(LayerStream, ManyWaitersOnDifferentLayersAreAllReleased) {
  LayerStream s(4);
  std::vector<int> released(4, 0);
  std::vector<std::thread> waiters;
  for (int l = 0; l < 4; ++l) waiters.emplace_back([&, l] { released[size_t(l)] = s.wait(l); });
  for (int64_t l : {3, 1, 0, 2}) s.mark_ready(l);
  for (auto& t : waiters) t.join();
  EXPECT_EQ(released, (std::vector<int>{1, 1, 1, 1}));
}

TEST(LayerStream, WaitWithATimeoutReturnsFalseWithoutThrowing) {
  LayerStream s(2);
  const auto start = std::chrono::steady_clock::now();
  bool r = true;
  EXPECT_NO_THROW(r = s.wait(0, 30ms));
  EXPECT_FALSE(r);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 30ms);
  EXPECT_FALSE(s.wait(0, 0ns));
  s.mark_ready(0);
  EXPECT_TRUE(s.wait(0, 0ns));
  EXPECT_TRUE(s.wait(0, 1h));  // already ready: returns at once
}

TEST(LayerStream, AnErrorFromAnotherThreadWakesABlockedWaiter) {
  LayerStream s(3);
  std::string caught;
  bool was_stream_error = false;
  std::thread waiter([&] {
    try {
      s.wait(2);
    } catch (const LayerStreamError& e) {
      was_stream_error = true;
      caught = e.what();
    } catch (const std::exception& e) {
      caught = e.what();
    }
  });
  s.set_error("prefill failed: out of memory");
  waiter.join();
  EXPECT_TRUE(was_stream_error);
  EXPECT_EQ(caught, "prefill failed: out of memory");
  EXPECT_EQ(s.error(), "prefill failed: out of memory");
  EXPECT_FALSE(s.complete());
}

TEST(LayerStream, AWaitWithATimeoutAlsoThrowsOnceTheStreamFailed) {
  LayerStream s(2);
  s.set_error("dropped");
  EXPECT_THROW(s.wait(0, 1h), LayerStreamError);
  EXPECT_THROW(s.wait(0, 0ns), LayerStreamError);
}

TEST(LayerStream, LayerStreamErrorIsAnEpError) {
  LayerStream s(1);
  s.set_error("boom");
  EXPECT_EQ(error_of([&] { s.wait(0); }), "boom");
}

TEST(LayerStream, TheFirstErrorWins) {
  LayerStream s(2);
  s.set_error("first");
  s.set_error("second");
  EXPECT_EQ(s.error(), "first");
  EXPECT_EQ(error_of([&] { s.wait(1); }), "first");
}

TEST(LayerStream, AnEmptyErrorMessageStillFailsTheStream) {
  LayerStream s(1);
  s.set_error("");
  EXPECT_FALSE(s.error().empty());
  EXPECT_THROW(s.wait(0), LayerStreamError);
}

TEST(LayerStream, ALayerReadyBeforeTheErrorIsStillReady) {
  LayerStream s(2);
  s.mark_ready(0);
  s.set_error("connection reset");
  EXPECT_TRUE(s.ready(0));
  EXPECT_TRUE(s.wait(0));
  EXPECT_TRUE(s.wait(0, 0ns));
  EXPECT_THROW(s.wait(1), LayerStreamError);
}

TEST(LayerStream, LayersOutOfRangeThrow) {
  LayerStream s(2);
  EXPECT_TRUE(contains(error_of([&] { s.mark_ready(2); }), "out of range"));
  EXPECT_TRUE(contains(error_of([&] { s.mark_ready(-1); }), "out of range"));
  EXPECT_THROW(s.wait(2), Error);
  EXPECT_THROW(s.wait(-1, 1ms), Error);
  EXPECT_THROW(s.ready(5), Error);
  EXPECT_FALSE(s.complete());  // nothing was counted
}

// ---------------------------------------------------------------------------------------------
// KvSegment

std::vector<float> pattern(size_t n, float base) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = base + 0.25f * float(i);
  return v;
}

TEST(KvSegment, ShapeAndBytes) {
  KvSegment seg(3, 5, 2, 4);
  EXPECT_EQ(seg.n_layers(), 3);
  EXPECT_EQ(seg.n_tokens(), 5);
  EXPECT_EQ(seg.row_size(), 8);
  EXPECT_EQ(seg.bytes(), 2u * 3 * 5 * 8 * sizeof(float));
  EXPECT_FALSE(seg.complete());
}

TEST(KvSegment, PublishLayerCopiesTheData) {
  KvSegment seg(2, 3, 1, 4);
  std::vector<float> k = pattern(12, 1.0f), v = pattern(12, -7.0f);
  const std::vector<float> k0 = k, v0 = v;
  seg.publish_layer(1, k.data(), v.data());
  k.assign(k.size(), 0.0f);  // the caller's buffer is reused: the segment kept its own copy
  v.assign(v.size(), 0.0f);
  EXPECT_TRUE(seg.layer_ready(1));
  EXPECT_FALSE(seg.layer_ready(0));
  EXPECT_EQ(std::vector<float>(seg.k(1), seg.k(1) + 12), k0);
  EXPECT_EQ(std::vector<float>(seg.v(1), seg.v(1) + 12), v0);
}

TEST(KvSegment, WaitLayerReturnsOnceAnotherThreadPublishes) {
  constexpr int64_t kLayers = 3, kTokens = 4, kRow = 6;
  KvSegment seg(kLayers, kTokens, 2, 3);
  std::vector<std::vector<float>> ks, vs;
  for (int64_t l = 0; l < kLayers; ++l) {
    ks.push_back(pattern(kTokens * kRow, float(10 * l)));
    vs.push_back(pattern(kTokens * kRow, float(-10 * l - 1)));
  }
  std::vector<std::vector<float>> seen_k(kLayers), seen_v(kLayers);
  std::thread consumer([&] {
    for (int64_t l = 0; l < kLayers; ++l) {
      seg.wait_layer(l);
      seen_k[size_t(l)].assign(seg.k(l), seg.k(l) + kTokens * kRow);
      seen_v[size_t(l)].assign(seg.v(l), seg.v(l) + kTokens * kRow);
    }
  });
  for (int64_t l : {2, 0, 1}) seg.publish_layer(l, ks[size_t(l)].data(), vs[size_t(l)].data());
  consumer.join();
  EXPECT_EQ(seen_k, ks);
  EXPECT_EQ(seen_v, vs);
  EXPECT_TRUE(seg.complete());
}

TEST(KvSegment, WaitLayerReportsTheTimeSpentWaiting) {
  KvSegment seg(1, 1, 1, 1);
  const float x = 1.0f;
  seg.publish_layer(0, &x, &x);
  EXPECT_GE(seg.wait_layer(0).count(), 0);
  EXPECT_LT(seg.wait_layer(0), 1s);  // ready: no waiting
}

TEST(KvSegment, AnErrorFromAnotherThreadWakesABlockedWaiterWithItsMessage) {
  KvSegment seg(2, 2, 1, 2);
  std::string caught;
  std::thread waiter([&] {
    try {
      seg.wait_layer(1);
    } catch (const LayerStreamError& e) {
      caught = e.what();
    }
  });
  seg.set_error("KV stream: layer frame checksum mismatch");
  waiter.join();
  EXPECT_EQ(caught, "KV stream: layer frame checksum mismatch");
}

TEST(KvSegment, TheFirstErrorWins) {
  KvSegment seg(1, 1, 1, 1);
  seg.set_error("the cloud went away");
  seg.set_error("later error");
  EXPECT_EQ(error_of([&] { seg.wait_layer(0); }), "the cloud went away");
}

TEST(KvSegment, ALayerPublishedBeforeTheErrorIsStillReadable) {
  KvSegment seg(2, 2, 1, 2);
  const std::vector<float> k = pattern(4, 3.0f), v = pattern(4, 4.0f);
  seg.publish_layer(0, k.data(), v.data());
  seg.set_error("truncated");
  EXPECT_NO_THROW(seg.wait_layer(0));
  EXPECT_EQ(std::vector<float>(seg.k(0), seg.k(0) + 4), k);
  EXPECT_EQ(std::vector<float>(seg.v(0), seg.v(0) + 4), v);
  EXPECT_THROW(seg.wait_layer(1), LayerStreamError);
  EXPECT_FALSE(seg.complete());
}

TEST(KvSegment, LayersOutOfRangeThrow) {
  KvSegment seg(2, 1, 1, 2);
  const float x[2] = {1, 2};
  EXPECT_TRUE(contains(error_of([&] { seg.publish_layer(2, x, x); }), "out of range"));
  EXPECT_TRUE(contains(error_of([&] { seg.publish_layer(-1, x, x); }), "out of range"));
  EXPECT_THROW(seg.wait_layer(2), Error);
  EXPECT_THROW(seg.layer_ready(-1), Error);
  EXPECT_THROW(seg.mark_ready(7), Error);
  EXPECT_FALSE(seg.complete());
}

TEST(KvSegment, CompleteOnlyWhenEveryLayerIsPublishedOutOfOrder) {
  KvSegment seg(4, 1, 1, 1);
  const float x = 0.5f;
  for (int64_t l : {3, 1, 2}) {
    seg.publish_layer(l, &x, &x);
    EXPECT_FALSE(seg.complete()) << l;
  }
  EXPECT_FALSE(seg.layer_ready(0));
  seg.publish_layer(0, &x, &x);
  EXPECT_TRUE(seg.complete());
}

TEST(KvSegment, FillingInPlaceThenMarkingReady) {
  KvSegment seg(1, 2, 1, 2);
  for (int i = 0; i < 4; ++i) {
    seg.k_mut(0)[i] = float(i);
    seg.v_mut(0)[i] = float(-i);
  }
  seg.mark_ready(0);
  seg.wait_layer(0);
  EXPECT_EQ(seg.k(0)[3], 3.0f);
  EXPECT_EQ(seg.v(0)[3], -3.0f);
  EXPECT_TRUE(seg.complete());
}

// ---------------------------------------------------------------------------------------------
// PromptKv

KvStreamHeader small_header(KvDtype dtype) {
  KvStreamHeader h;
  h.fingerprint = "xxh3-128:0123456789abcdef0123456789abcdef";
  h.prompt_id = "support";
  h.prompt_version = 7;
  h.chat_template = "chatml";
  h.tokens = {1, 42, 7, 300, 2};
  h.dtype = dtype;
  h.n_layers = 3;
  h.n_kv_heads = 2;
  h.head_dim = 4;
  return h;
}

// A frame of deterministic pseudo-random K/V for `layer`.
std::string frame(const KvStreamHeader& h, uint32_t layer) {
  std::mt19937 rng(100 + layer);
  std::normal_distribution<float> dist;
  const size_t n = h.tokens.size() * h.n_kv_heads * h.head_dim;
  std::vector<float> k(n), v(n);
  for (auto& x : k) x = dist(rng);
  for (auto& x : v) x = dist(rng);
  return encode_kv_layer(h, layer, k.data(), v.data());
}

std::shared_ptr<PromptKv> complete_prompt_kv(const KvStreamHeader& h) {
  auto kv = std::make_shared<PromptKv>(h);
  for (uint32_t l : {1u, 2u, 0u}) kv->add_layer(l, frame(h, l));  // any order
  return kv;
}

TEST(PromptKv, AddLayerThenWaitLayerReturnsTheFrame) {
  const KvStreamHeader h = small_header(KvDtype::F16);
  PromptKv kv(h);
  EXPECT_EQ(kv.header_bytes(), encode_kv_header(h));
  EXPECT_EQ(kv.header().prompt_id, "support");
  EXPECT_EQ(kv.end_bytes(), encode_kv_end(h));
  kv.add_layer(1, frame(h, 1));
  const std::optional<std::string> got = kv.wait_layer(1, 1s);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, frame(h, 1));
  EXPECT_FALSE(kv.complete());
}

TEST(PromptKv, WaitLayerTimesOutWithNullopt) {
  PromptKv kv(small_header(KvDtype::F16));
  std::optional<std::string> got = std::string("x");
  EXPECT_NO_THROW(got = kv.wait_layer(0, 10ms));
  EXPECT_FALSE(got.has_value());
}

TEST(PromptKv, AReaderBlockedOnALayerGetsItFromTheProducerThread) {
  const KvStreamHeader h = small_header(KvDtype::F32);
  PromptKv kv(h);
  std::vector<std::string> got;
  std::thread reader([&] {
    for (uint32_t l = 0; l < h.n_layers; ++l) {
      auto f = kv.wait_layer(l, std::chrono::milliseconds(60000));
      got.push_back(f ? *f : "timeout");
    }
  });
  for (uint32_t l = 0; l < h.n_layers; ++l) kv.add_layer(l, frame(h, l));
  reader.join();
  ASSERT_EQ(got.size(), 3u);
  for (uint32_t l = 0; l < 3; ++l) EXPECT_EQ(got[l], frame(h, l)) << l;
}

TEST(PromptKv, ALayerAddedTwiceIsRefused) {
  const KvStreamHeader h = small_header(KvDtype::F16);
  PromptKv kv(h);
  kv.add_layer(0, frame(h, 0));
  EXPECT_TRUE(contains(error_of([&] { kv.add_layer(0, "something else"); }), "twice"));
  EXPECT_EQ(*kv.wait_layer(0, 0ms), frame(h, 0));  // the first frame stays
  EXPECT_TRUE(contains(error_of([&] { kv.add_layer(3, frame(h, 0)); }), "out of range"));
}

TEST(PromptKv, AllBytesBeforeCompletionThrowsAndStreamBytesIsZero) {
  const KvStreamHeader h = small_header(KvDtype::F16);
  PromptKv kv(h);
  EXPECT_EQ(kv.stream_bytes(), 0u);
  kv.add_layer(0, frame(h, 0));
  kv.add_layer(2, frame(h, 2));
  EXPECT_EQ(kv.stream_bytes(), 0u);
  EXPECT_TRUE(contains(error_of([&] { (void)kv.all_bytes(); }), "not complete"));
  kv.add_layer(1, frame(h, 1));
  ASSERT_TRUE(kv.complete());
  const std::string all = kv.all_bytes();
  EXPECT_EQ(kv.stream_bytes(), all.size());
  // Header, frames in layer order, end marker.
  EXPECT_EQ(all, encode_kv_header(h) + frame(h, 0) + frame(h, 1) + frame(h, 2) + encode_kv_end(h));
}

TEST(PromptKv, SetErrorMakesABlockedWaitLayerThrow) {
  PromptKv kv(small_header(KvDtype::F16));
  std::string caught;
  std::thread reader([&] {
    try {
      kv.wait_layer(2, std::chrono::milliseconds(60000));
      caught = "returned";
    } catch (const LayerStreamError& e) {
      caught = e.what();
    }
  });
  kv.set_error("prefill failed");
  reader.join();
  EXPECT_EQ(caught, "prefill failed");
  EXPECT_EQ(kv.error(), "prefill failed");
  EXPECT_EQ(kv.stream_bytes(), 0u);
}

TEST(ParserPromptKv, FromBytesRoundTripsByteForByte) {
  for (KvDtype dtype : {KvDtype::F32, KvDtype::F16}) {
    SCOPED_TRACE(std::string(kv_dtype_name(dtype)));
    const KvStreamHeader h = small_header(dtype);
    const std::string all = complete_prompt_kv(h)->all_bytes();
    const auto back = PromptKv::from_bytes(all);
    ASSERT_TRUE(back);
    EXPECT_TRUE(back->complete());
    EXPECT_EQ(back->all_bytes(), all);
    EXPECT_EQ(back->stream_bytes(), all.size());
    EXPECT_EQ(back->header().prompt_id, h.prompt_id);
    EXPECT_EQ(back->header().prompt_version, h.prompt_version);
    EXPECT_EQ(back->header().tokens, h.tokens);
    EXPECT_EQ(back->header().fingerprint, h.fingerprint);
    EXPECT_EQ(back->header().chat_template, h.chat_template);
    EXPECT_EQ(back->header().dtype, dtype);
    for (uint32_t l = 0; l < h.n_layers; ++l) EXPECT_EQ(*back->wait_layer(l, 0ms), frame(h, l));
  }
}

TEST(ParserPromptKv, FromBytesAcceptsFramesInAnyOrder) {
  const KvStreamHeader h = small_header(KvDtype::F16);
  const std::string shuffled =
      encode_kv_header(h) + frame(h, 2) + frame(h, 0) + frame(h, 1) + encode_kv_end(h);
  EXPECT_EQ(PromptKv::from_bytes(shuffled)->all_bytes(), complete_prompt_kv(h)->all_bytes());
}

TEST(ParserPromptKv, FromBytesRefusesTruncatedOrCorruptStreams) {
  const std::string all = complete_prompt_kv(small_header(KvDtype::F16))->all_bytes();
  for (size_t cut : {size_t(0), size_t(5), all.size() / 2, all.size() - 1}) {
    EXPECT_THROW(PromptKv::from_bytes(all.substr(0, cut)), Error) << cut;
  }
  for (size_t at : {size_t(2), size_t(20), all.size() / 2, all.size() - 3}) {
    std::string bad = all;
    bad[at] = char(bad[at] ^ 0x10);
    EXPECT_THROW(PromptKv::from_bytes(bad), Error) << at;
  }
  // Bytes after the end marker, in the same piece or a later one.
  EXPECT_THROW(PromptKv::from_bytes(all + "x"), Error);
  KvStreamParser parser;
  parser.feed(all);
  EXPECT_THROW(parser.feed("x"), Error);
}

TEST(ParserPromptKv, PromptIdsThatCouldNameOtherFilesAreRefused) {
  for (const std::string& id :
       std::vector<std::string>{"../escaped", "a/b", "", std::string(129, 'a'), "sp ace"}) {
    KvStreamHeader h = small_header(KvDtype::F16);
    h.prompt_id = id;
    EXPECT_FALSE(valid_prompt_id(id)) << id;
    KvStreamParser parser;
    EXPECT_THROW(parser.feed(encode_kv_header(h)), Error) << id;
  }
  EXPECT_TRUE(valid_prompt_id("support-v2.en_GB"));
}

}  // namespace
}  // namespace ep
