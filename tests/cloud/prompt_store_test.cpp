// The cloud's registry of prompts (cloud/prompt_store.h): versions, lookups, and the copy on disk
// that a restarted cloud reloads and verifies (a corrupt file is ignored, never trusted).
#include "cloud/prompt_store.h"

#include "model/fingerprint.h"
#include "model/model.h"
#include "protocol/kv_wire.h"
#include "protocol/prompt_kv.h"
#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <vector>

namespace ep {
namespace {

namespace fs = std::filesystem;

// The llama-gqa fixture, loaded once.
const Model& model() {
  static const std::unique_ptr<Model> m = load_model(test::fixtures_dir() / "models" / "llama-gqa");
  return *m;
}
const std::string& fingerprint() {
  static const std::string f = model_fingerprint(*model().source);
  return f;
}

// Fills every layer of the prompt's KV with values derived from `seed`, as a prefill would.
void fill(const CloudPrompt& p, float seed) {
  const KvStreamHeader& h = p.kv->header();
  const size_t n = h.tokens.size() * h.n_kv_heads * h.head_dim;
  for (uint32_t l = 0; l < h.n_layers; ++l) {
    std::vector<float> k(n), v(n);
    for (size_t i = 0; i < n; ++i) {
      k[i] = seed + 0.25f * float(l) + 0.001f * float(i % 997);
      v[i] = -seed - 0.5f * float(l) + 0.002f * float(i % 499);
    }
    p.kv->add_layer(l, encode_kv_layer(h, l, k.data(), v.data()));
  }
  ASSERT_TRUE(p.kv->complete());
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

const std::vector<int32_t> kTokens = {1, 17, 400, 999, 3, 250, 251, 7};
const std::vector<int32_t> kOtherTokens = {1, 18, 401, 998, 4};

TEST(PromptStore, PutCreatesVersionsOnlyForChangedPrompts) {
  PromptStore store({}, model(), fingerprint(), KvDtype::F16);
  EXPECT_EQ(store.size(), 0u);

  const auto first = store.put("", "support", "You help.", "chatml", kTokens);
  EXPECT_TRUE(first.created);
  EXPECT_EQ(first.prompt.id, "support");
  EXPECT_EQ(first.prompt.version, 1u);
  EXPECT_EQ(first.prompt.text, "You help.");
  EXPECT_EQ(first.prompt.chat_template, "chatml");
  EXPECT_EQ(first.prompt.tokens, kTokens);
  ASSERT_TRUE(first.prompt.kv);
  const KvStreamHeader& h = first.prompt.kv->header();
  EXPECT_EQ(h.prompt_id, "support");
  EXPECT_EQ(h.prompt_version, 1u);
  EXPECT_EQ(h.fingerprint, fingerprint());
  EXPECT_EQ(h.tokens, kTokens);
  EXPECT_EQ(h.chat_template, "chatml");
  EXPECT_EQ(h.dtype, KvDtype::F16);
  EXPECT_EQ(h.n_layers, uint32_t(model().hp.n_layer));
  EXPECT_EQ(h.n_kv_heads, uint32_t(model().hp.n_head_kv));
  EXPECT_EQ(h.head_dim, uint32_t(model().hp.head_dim));

  // The same tokens and template: not created, same version, the same KV object (no recompute).
  const auto same = store.put("", "support", "You help!", "chatml", kTokens);
  EXPECT_FALSE(same.created);
  EXPECT_EQ(same.prompt.version, 1u);
  EXPECT_EQ(same.prompt.kv, first.prompt.kv);

  // Other tokens, or another template: a new version with a new KV.
  const auto other = store.put("", "support", "You help more.", "chatml", kOtherTokens);
  EXPECT_TRUE(other.created);
  EXPECT_EQ(other.prompt.version, 2u);
  EXPECT_NE(other.prompt.kv, first.prompt.kv);
  EXPECT_EQ(other.prompt.kv->header().prompt_version, 2u);
  const auto retemplated = store.put("", "support", "You help more.", "none", kOtherTokens);
  EXPECT_TRUE(retemplated.created);
  EXPECT_EQ(retemplated.prompt.version, 3u);

  // Versions are per id.
  const auto billing = store.put("", "billing", "Bills.", "chatml", kTokens);
  EXPECT_TRUE(billing.created);
  EXPECT_EQ(billing.prompt.version, 1u);
  EXPECT_EQ(store.size(), 2u);
}

TEST(PromptStore, AFailedPromptRegisteredAgainGetsANewVersion) {
  PromptStore store({}, model(), fingerprint(), KvDtype::F16);
  const auto first = store.put("", "p", "t", "none", kTokens);
  first.prompt.kv->set_error("prefill failed");
  const auto again = store.put("", "p", "t", "none", kTokens);
  EXPECT_TRUE(again.created);
  EXPECT_EQ(again.prompt.version, 2u);
  EXPECT_TRUE(again.prompt.kv->error().empty());
}

TEST(PromptStore, TenantsSeeOnlyTheirOwnPrompts) {
  test::ScratchDir dir;
  {
    PromptStore store(dir.path(), model(), fingerprint(), KvDtype::F16);
    const auto a = store.put("acme", "support", "A's.", "none", kTokens);
    const auto b = store.put("globex", "support", "B's.", "none", kOtherTokens);
    EXPECT_TRUE(b.created);  // the same id of another tenant is another prompt
    EXPECT_EQ(store.find("acme", "support")->tokens, kTokens);
    EXPECT_EQ(store.find("globex", "support")->tokens, kOtherTokens);
    EXPECT_FALSE(store.find("", "support"));
    EXPECT_FALSE(store.find("acme", "globex~support"));
    ASSERT_EQ(store.list("acme").size(), 1u);
    EXPECT_EQ(store.list("acme")[0].text, "A's.");
    fill(a.prompt, 1.0f);
    store.complete(a.prompt, 0.1);
    fill(b.prompt, 2.0f);
    store.complete(b.prompt, 0.1);
    EXPECT_FALSE(store.erase("acme", "nothing"));
    EXPECT_TRUE(store.erase("globex", "support"));
    EXPECT_TRUE(store.find("acme", "support"));
  }
  PromptStore reloaded(dir.path(), model(), fingerprint(), KvDtype::F16);
  ASSERT_TRUE(reloaded.find("acme", "support"));
  EXPECT_EQ(reloaded.find("acme", "support")->tenant, "acme");
  EXPECT_EQ(reloaded.find("acme", "support")->kv->header().prompt_id, "support");
  EXPECT_FALSE(reloaded.find("globex", "support"));
  EXPECT_FALSE(reloaded.find("", "support"));
}

TEST(PromptStore, VersionsNeverRepeatAcrossDeletesAndRestarts) {
  test::ScratchDir dir;
  {
    PromptStore store(dir.path(), model(), fingerprint(), KvDtype::F16);
    EXPECT_EQ(store.put("", "bank", "v1", "none", kTokens).prompt.version, 1u);
    EXPECT_EQ(store.put("", "bank", "v2", "none", kOtherTokens).prompt.version, 2u);
    ASSERT_TRUE(store.erase("", "bank"));
    // Registered again after the delete, with the first text: not version 1 again.
    const auto again = store.put("", "bank", "v1", "none", kTokens);
    EXPECT_EQ(again.prompt.version, 3u);
    ASSERT_TRUE(store.erase("", "bank"));  // deleted before its prefill finished
    // Other tenants' versions count apart.
    EXPECT_EQ(store.put("acme", "bank", "a", "none", kTokens).prompt.version, 1u);
  }
  // A restart: no prompt of that id is on disk, yet the versions go on.
  {
    PromptStore store(dir.path(), model(), fingerprint(), KvDtype::F16);
    EXPECT_FALSE(store.find("", "bank"));
    EXPECT_EQ(store.put("", "bank", "v1", "none", kTokens).prompt.version, 4u);
    EXPECT_EQ(store.put("acme", "bank", "b", "none", kOtherTokens).prompt.version, 2u);
  }
  // Memory only: versions start at 1 in each process (documented; nothing survives there).
  PromptStore memory({}, model(), fingerprint(), KvDtype::F16);
  EXPECT_EQ(memory.put("", "bank", "v1", "none", kTokens).prompt.version, 1u);
}

TEST(PromptStore, FindListEraseSizeAndReady) {
  PromptStore store({}, model(), fingerprint(), KvDtype::F16);
  EXPECT_FALSE(store.find("", "a"));
  EXPECT_TRUE(store.list("").empty());
  const auto a = store.put("", "a", "A", "none", kTokens);
  const auto b = store.put("", "b", "B", "chatml", kOtherTokens);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.ready(), 0u);

  const auto found = store.find("", "b");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->version, 1u);
  EXPECT_EQ(found->tokens, kOtherTokens);
  EXPECT_EQ(found->text, "B");
  EXPECT_EQ(found->kv, b.prompt.kv);

  std::vector<std::string> ids;
  for (const CloudPrompt& p : store.list("")) ids.push_back(p.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"a", "b"}));

  fill(a.prompt, 1.0f);
  EXPECT_EQ(store.ready(), 1u);
  store.complete(a.prompt, 0.5);  // memory only: records the time, writes nothing
  EXPECT_DOUBLE_EQ(store.find("", "a")->prefill_s, 0.5);

  EXPECT_TRUE(store.erase("", "a"));
  EXPECT_FALSE(store.erase("", "a"));
  EXPECT_FALSE(store.find("", "a"));
  EXPECT_EQ(store.size(), 1u);
  EXPECT_EQ(store.ready(), 0u);
  EXPECT_FALSE(store.erase("", "never"));
}

TEST(PromptStore, CompletedPromptsAreReloadedFromTheDirectory) {
  test::ScratchDir dir;
  std::string kv_bytes, v2_bytes;
  {
    PromptStore store(dir.path(), model(), fingerprint(), KvDtype::F16);
    const auto p = store.put("", "support", "You help.", "chatml", kTokens);
    fill(p.prompt, 1.0f);
    store.complete(p.prompt, 0.25);
    kv_bytes = p.prompt.kv->all_bytes();
    EXPECT_EQ(names_in(dir.path()),
              (std::vector<std::string>{"support.epkv", "support.json", "versions.json"}));
    EXPECT_EQ(test::read_file(dir / "support.epkv"), kv_bytes);

    // A second prompt at version 2; and one never completed, which is not persisted.
    store.put("", "billing", "Bills.", "none", kTokens);
    const auto v2 = store.put("", "billing", "Bills 2.", "none", kOtherTokens);
    fill(v2.prompt, 2.0f);
    store.complete(v2.prompt, 0.1);
    v2_bytes = v2.prompt.kv->all_bytes();
    store.put("", "pending", "Never prefilled.", "none", kTokens);
  }
  EXPECT_EQ(names_in(dir.path()),
            (std::vector<std::string>{"billing.epkv", "billing.json", "support.epkv",
                                      "support.json", "versions.json"}));

  PromptStore reloaded(dir.path(), model(), fingerprint(), KvDtype::F16);
  EXPECT_EQ(reloaded.size(), 2u);
  EXPECT_EQ(reloaded.ready(), 2u);
  EXPECT_FALSE(reloaded.find("", "pending"));
  const auto support = reloaded.find("", "support");
  ASSERT_TRUE(support);
  EXPECT_EQ(support->version, 1u);
  EXPECT_EQ(support->tokens, kTokens);
  EXPECT_EQ(support->text, "You help.");
  EXPECT_EQ(support->chat_template, "chatml");
  ASSERT_TRUE(support->kv->complete());
  EXPECT_EQ(support->kv->all_bytes(), kv_bytes);  // byte-identical KV
  const auto billing = reloaded.find("", "billing");
  ASSERT_TRUE(billing);
  EXPECT_EQ(billing->version, 2u);
  EXPECT_EQ(billing->tokens, kOtherTokens);
  EXPECT_EQ(billing->text, "Bills 2.");
  EXPECT_EQ(billing->kv->all_bytes(), v2_bytes);

  // The reloaded prompt keeps its version: registering it again is not a new one; changing it
  // continues from the persisted version.
  EXPECT_FALSE(reloaded.put("", "support", "You help.", "chatml", kTokens).created);
  const auto next = reloaded.put("", "billing", "Bills 3.", "none", kTokens);
  EXPECT_TRUE(next.created);
  EXPECT_EQ(next.prompt.version, 3u);
}

TEST(PromptStore, CorruptKvFileIsIgnoredAtReload) {
  test::ScratchDir dir;
  {
    PromptStore store(dir.path(), model(), fingerprint(), KvDtype::F16);
    for (const char* id : {"good", "flipped", "truncated"}) {
      const auto p = store.put("", id, id, "none", kTokens);
      fill(p.prompt, 3.0f);
      store.complete(p.prompt, 0.1);
    }
  }
  std::string flipped = test::read_file(dir / "flipped.epkv");
  ASSERT_GT(flipped.size(), 100u);
  flipped[flipped.size() / 2] = char(flipped[flipped.size() / 2] ^ 0x01);  // one bit of a layer
  test::write_file(dir / "flipped.epkv", flipped);
  const std::string whole = test::read_file(dir / "truncated.epkv");
  test::write_file(dir / "truncated.epkv", whole.substr(0, whole.size() - 10));
  // Metadata that is not JSON, and metadata whose KV file is missing.
  test::write_file(dir / "garbage.json", "{not json");
  test::write_file(dir / "orphan.json", R"({"id": "orphan", "version": 1, "text": "",
      "chat_template": "none", "fingerprint": ")" +
                                            fingerprint() + "\"}");

  PromptStore reloaded(dir.path(), model(), fingerprint(), KvDtype::F16);
  EXPECT_EQ(reloaded.size(), 1u);
  EXPECT_TRUE(reloaded.find("", "good"));
  EXPECT_FALSE(reloaded.find("", "flipped"));
  EXPECT_FALSE(reloaded.find("", "truncated"));
  EXPECT_FALSE(reloaded.find("", "orphan"));

  // Another model's store ignores every file.
  PromptStore other(dir.path(), model(), "xxh3-128:00000000000000000000000000000000", KvDtype::F16);
  EXPECT_EQ(other.size(), 0u);
}

TEST(PromptStore, EraseRemovesBothFilesAndNoTemporaryIsLeft) {
  test::ScratchDir dir;
  PromptStore store(dir.path(), model(), fingerprint(), KvDtype::F32);
  const auto keep = store.put("", "keep", "k", "none", kTokens);
  const auto gone = store.put("", "gone", "g", "none", kOtherTokens);
  fill(keep.prompt, 4.0f);
  fill(gone.prompt, 5.0f);
  store.complete(keep.prompt, 0.1);
  store.complete(gone.prompt, 0.1);
  // Completing again (e.g. the same prompt rewritten) replaces the files in place.
  store.complete(gone.prompt, 0.2);
  EXPECT_EQ(names_in(dir.path()), (std::vector<std::string>{"gone.epkv", "gone.json", "keep.epkv",
                                                            "keep.json", "versions.json"}));

  EXPECT_TRUE(store.erase("", "gone"));
  EXPECT_EQ(names_in(dir.path()),
            (std::vector<std::string>{"keep.epkv", "keep.json", "versions.json"}));
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  }
  PromptStore reloaded(dir.path(), model(), fingerprint(), KvDtype::F32);
  EXPECT_EQ(reloaded.size(), 1u);
  ASSERT_TRUE(reloaded.find("", "keep"));
  EXPECT_EQ(reloaded.find("", "keep")->kv->header().dtype, KvDtype::F32);
  EXPECT_EQ(reloaded.find("", "keep")->kv->all_bytes(), keep.prompt.kv->all_bytes());
}

TEST(PromptStore, AMissingDirectoryIsCreated) {
  test::ScratchDir dir;
  const fs::path nested = dir / "cache" / "prompts";
  PromptStore store(nested, model(), fingerprint(), KvDtype::F16);
  EXPECT_TRUE(fs::is_directory(nested));
  EXPECT_EQ(store.size(), 0u);
}

}  // namespace
}  // namespace ep
