// A cloud whose cache directory cannot take a prompt's KV (a file-size limit on the process, which
// fails writes with EFBIG as a full disk fails them with ENOSPC): no partial file is left, the
// error is reported once and counted, and the prompt is still served whole from memory.
#include "test_util.h"

#include <sys/resource.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <regex>
#include <thread>

namespace ep {
namespace {

using json = nlohmann::json;

// Starts the process with RLIMIT_FSIZE set to `bytes` (inherited at spawn; restored after).
std::unique_ptr<test::Process> start_with_file_size_limit(const std::vector<std::string>& args,
                                                          rlim_t bytes) {
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit limited = old;
  limited.rlim_cur = bytes;
  setrlimit(RLIMIT_FSIZE, &limited);
  auto p = std::make_unique<test::Process>(args);
  setrlimit(RLIMIT_FSIZE, &old);
  return p;
}

TEST(CloudDiskFull, APromptThatCannotBeWrittenLeavesNoFileAndIsServedFromMemory) {
  test::ScratchDir dir;
  const auto cloud = start_with_file_size_limit(
      {"cloud", "--insecure-http", "--model", test::default_model().string(), "--listen",
       "127.0.0.1:0", "--cache-dir", dir.path().string()},
      64 * 1024);
  const std::string url = test::start_cloud(*cloud);
  std::string text = "You are the assistant of a small bank.";
  for (int i = 0; i < 8; ++i) text += " Transfers abroad take two working days.";
  httplib::Client c(url);
  const auto put = c.Put("/v1/cloud-prompts/bank", json{{"text", text}}.dump(), "application/json");
  ASSERT_TRUE(put);
  ASSERT_EQ(put->status, 201) << put->body;
  const auto kv = c.Get("/v1/cloud-prompts/bank/kv");
  ASSERT_TRUE(kv);
  EXPECT_EQ(kv->status, 200);
  EXPECT_GT(kv->body.size(), size_t(64 * 1024));  // whole, although it could not be written
  EXPECT_NE(cloud->wait_for_line("cannot keep prompt 'bank'", 10000), "") << cloud->err();
  const auto metrics = c.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("edgeprompt_cloud_errors_total 1\n"), std::string::npos);
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
    EXPECT_EQ(name.find("bank"), std::string::npos) << name << " left behind";
  }
  // Still served, and it says the prompt is ready.
  const auto again = c.Get("/v1/cloud-prompts/bank/kv");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, kv->body);
  EXPECT_EQ(cloud->stop(), 0);
}

}  // namespace
}  // namespace ep
