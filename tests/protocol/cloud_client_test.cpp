// The typed client of the cloud's prompt endpoints (protocol/cloud_client.h) against a real
// `edgeprompt cloud` process: registering, describing, listing and deleting cloud prompts, and the
// kind of CloudError each failure is.
#include "protocol/cloud_client.h"

#include "test_util.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace ep {
namespace {

const std::string kToken = "s3cret";
const std::string kSystem = "You are the concise assistant of the Harbour Street library.";

CloudConnection connection(const std::string& url, const std::string& token = kToken) {
  CloudConnection c;
  c.base_url = url;
  c.connect_timeout = std::chrono::seconds(2);
  c.read_timeout = std::chrono::seconds(20);
  c.admin_token = token;
  return c;
}

// Polls until the prompt's prefill has finished (bounded); returns its last description.
CloudPromptInfo wait_ready(const CloudClient& client, const std::string& id) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  CloudPromptInfo p = client.prompt(id);
  while (p.state == "computing" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    p = client.prompt(id);
  }
  return p;
}

// The CloudError that `f` throws (fails the test if it throws none).
template <typename F>
CloudError cloud_error_of(F&& f) {
  try {
    f();
  } catch (const CloudError& e) {
    return e;
  }
  ADD_FAILURE() << "no CloudError thrown";
  return CloudError(CloudFailure::Corrupt, "none");
}

// A loopback port nothing listens on (bound, then closed).
int dead_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("cannot find a free port");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::string write_token(const std::filesystem::path& path) {
  test::write_file(path, kToken + "\n");
  return path.string();
}

// `edgeprompt cloud` with the default model and an admin token (from a file), on a free loopback
// port; stopped when the object dies.
struct Cloud {
  test::ScratchDir dir;
  std::string token_file = write_token(dir / "admin-token");
  test::Process process{{"cloud", "--insecure-http", "--model", test::default_model().string(),
                         "--listen", "127.0.0.1:0", "--admin-token-file", token_file}};
  std::string url = test::start_cloud(process);
};

TEST(CloudClient, RegistersTextDescribesAndListsPrompts) {
  Cloud cloud;
  // A trailing slash in the URL is dropped.
  const CloudClient client(connection(cloud.url + "/"));
  EXPECT_EQ(client.connection().base_url, cloud.url);

  CloudPromptSpec spec;
  spec.text = kSystem;
  spec.chat_template = "chatml";
  const CloudPromptInfo put = client.put_prompt("library", spec);
  EXPECT_EQ(put.id, "library");
  EXPECT_EQ(put.version, 1u);
  EXPECT_GT(put.n_tokens, 10u);
  EXPECT_EQ(put.fingerprint.rfind("xxh3-128:", 0), 0u) << put.fingerprint;
  EXPECT_EQ(put.chat_template, "chatml");
  EXPECT_TRUE(put.state == "computing" || put.state == "ready") << put.state;

  const CloudPromptInfo ready = wait_ready(client, "library");
  EXPECT_EQ(ready.state, "ready");
  EXPECT_EQ(ready.version, 1u);
  EXPECT_EQ(ready.n_tokens, put.n_tokens);
  EXPECT_EQ(ready.fingerprint, put.fingerprint);
  EXPECT_GT(ready.kv_bytes, 0u);

  // Token ids as given.
  CloudPromptSpec ids;
  ids.tokens = std::vector<int32_t>{1, 3, 200, 201, 202, 4, 5};
  const CloudPromptInfo put_ids = client.put_prompt("by-ids", ids);
  EXPECT_EQ(put_ids.version, 1u);
  EXPECT_EQ(put_ids.n_tokens, 7u);
  EXPECT_EQ(put_ids.chat_template, "none");
  EXPECT_EQ(wait_ready(client, "by-ids").state, "ready");

  const std::vector<CloudPromptInfo> all = client.prompts();
  const auto find = [&](const std::string& id) {
    return std::find_if(all.begin(), all.end(), [&](const auto& p) { return p.id == id; });
  };
  ASSERT_NE(find("library"), all.end());
  ASSERT_NE(find("by-ids"), all.end());
  EXPECT_EQ(find("library")->n_tokens, put.n_tokens);
  EXPECT_EQ(find("by-ids")->n_tokens, 7u);
  EXPECT_EQ(find("by-ids")->fingerprint, put.fingerprint);

  // Describing and listing need no admin token.
  const CloudClient anonymous(connection(cloud.url, ""));
  EXPECT_EQ(anonymous.prompt("library").version, 1u);
  EXPECT_GE(anonymous.prompts().size(), 2u);
}

TEST(CloudClient, SamePromptKeepsItsVersionAndAChangedOneIncrementsIt) {
  Cloud cloud;
  const CloudClient client(connection(cloud.url));
  CloudPromptSpec spec;
  spec.text = "You help with the timetable of the night buses.";
  spec.chat_template = "chatml";
  EXPECT_EQ(client.put_prompt("buses", spec).version, 1u);
  EXPECT_EQ(client.put_prompt("buses", spec).version, 1u);  // same tokens, same template
  EXPECT_EQ(wait_ready(client, "buses").version, 1u);

  spec.text += " Answer in one line.";
  const CloudPromptInfo v2 = client.put_prompt("buses", spec);
  EXPECT_EQ(v2.version, 2u);
  // The same text in another template is another prompt too.
  spec.chat_template = "none";
  EXPECT_EQ(client.put_prompt("buses", spec).version, 3u);
  const CloudPromptInfo last = wait_ready(client, "buses");
  EXPECT_EQ(last.version, 3u);
  EXPECT_EQ(last.chat_template, "none");
  EXPECT_EQ(last.state, "ready");
}

TEST(CloudClient, DeletedPromptIsNotFound) {
  Cloud cloud;
  const CloudClient client(connection(cloud.url));
  CloudPromptSpec spec;
  spec.tokens = std::vector<int32_t>{1, 10, 11, 12};
  client.put_prompt("short-lived", spec);
  wait_ready(client, "short-lived");
  client.delete_prompt("short-lived");

  const CloudError e = cloud_error_of([&] { client.prompt("short-lived"); });
  EXPECT_EQ(e.failure(), CloudFailure::NotFound);
  EXPECT_EQ(e.http_status(), 404);
  EXPECT_TRUE(e.permanent());
  EXPECT_NE(std::string(e.what()).find("short-lived"), std::string::npos) << e.what();
  const std::vector<CloudPromptInfo> all = client.prompts();
  EXPECT_TRUE(
      std::none_of(all.begin(), all.end(), [](const auto& p) { return p.id == "short-lived"; }));

  // Deleting it again: not found as well.
  const CloudError again = cloud_error_of([&] { client.delete_prompt("short-lived"); });
  EXPECT_EQ(again.failure(), CloudFailure::NotFound);
  EXPECT_EQ(again.http_status(), 404);
}

TEST(CloudClient, WrongOrMissingAdminTokenIsRejected) {
  Cloud cloud;
  const CloudClient admin(connection(cloud.url));
  CloudPromptSpec spec;
  spec.tokens = std::vector<int32_t>{1, 20, 21};
  admin.put_prompt("guarded", spec);

  for (const std::string token : {"wrong", ""}) {
    SCOPED_TRACE("token '" + token + "'");
    const CloudClient client(connection(cloud.url, token));
    const CloudError put = cloud_error_of([&] { client.put_prompt("intruder", spec); });
    EXPECT_EQ(put.failure(), CloudFailure::Rejected);
    EXPECT_EQ(put.http_status(), 401);
    EXPECT_TRUE(put.permanent());
    EXPECT_NE(std::string(put.what()).find("admin token"), std::string::npos) << put.what();
    const CloudError del = cloud_error_of([&] { client.delete_prompt("guarded"); });
    EXPECT_EQ(del.failure(), CloudFailure::Rejected);
    EXPECT_EQ(del.http_status(), 401);
  }
  // Nothing was registered or deleted.
  EXPECT_EQ(cloud_error_of([&] { admin.prompt("intruder"); }).failure(), CloudFailure::NotFound);
  EXPECT_EQ(admin.prompt("guarded").version, 1u);
}

TEST(CloudClient, InvalidRegistrationIsRejected) {
  Cloud cloud;
  const CloudClient client(connection(cloud.url));
  CloudPromptSpec out_of_vocab;
  out_of_vocab.tokens = std::vector<int32_t>{1, 999999};
  const CloudError e = cloud_error_of([&] { client.put_prompt("bad", out_of_vocab); });
  EXPECT_EQ(e.failure(), CloudFailure::Rejected);
  EXPECT_EQ(e.http_status(), 400);
  CloudPromptSpec bad_template;
  bad_template.text = "hello";
  bad_template.chat_template = "klingon";
  EXPECT_EQ(cloud_error_of([&] { client.put_prompt("bad", bad_template); }).http_status(), 400);
}

TEST(CloudClient, DeadPortIsUnreachableQuickly) {
  CloudConnection c;
  c.base_url = "http://127.0.0.1:" + std::to_string(dead_port());
  c.connect_timeout = std::chrono::seconds(1);
  c.read_timeout = std::chrono::seconds(1);
  const CloudClient client(c);
  const auto start = std::chrono::steady_clock::now();
  for (int call = 0; call < 3; ++call) {
    const CloudError e = cloud_error_of([&] {
      if (call == 0) client.prompt("x");
      if (call == 1) client.prompts();
      if (call == 2) client.delete_prompt("x");
    });
    EXPECT_EQ(e.failure(), CloudFailure::Unreachable);
    EXPECT_EQ(e.http_status(), 0);
    EXPECT_FALSE(e.permanent());
    EXPECT_NE(std::string(e.what()).find(c.base_url), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(CloudClient, PermanentOnlyForAnswersThatWereNo) {
  EXPECT_TRUE(CloudError(CloudFailure::NotFound, "").permanent());
  EXPECT_TRUE(CloudError(CloudFailure::Rejected, "").permanent());
  EXPECT_TRUE(CloudError(CloudFailure::ModelMismatch, "").permanent());
  EXPECT_FALSE(CloudError(CloudFailure::Unreachable, "").permanent());
  EXPECT_FALSE(CloudError(CloudFailure::ServerError, "").permanent());
  EXPECT_FALSE(CloudError(CloudFailure::Corrupt, "").permanent());
  EXPECT_FALSE(CloudError(CloudFailure::Truncated, "").permanent());

  EXPECT_EQ(cloud_failure_of_status(404), CloudFailure::NotFound);
  EXPECT_EQ(cloud_failure_of_status(409), CloudFailure::ModelMismatch);
  EXPECT_EQ(cloud_failure_of_status(400), CloudFailure::Rejected);
  EXPECT_EQ(cloud_failure_of_status(401), CloudFailure::Rejected);
  EXPECT_EQ(cloud_failure_of_status(413), CloudFailure::Rejected);
  EXPECT_EQ(cloud_failure_of_status(500), CloudFailure::ServerError);
  EXPECT_EQ(cloud_failure_of_status(503), CloudFailure::ServerError);
  EXPECT_EQ(strip_trailing_slashes("http://h:1///"), "http://h:1");
  EXPECT_EQ(strip_trailing_slashes("http://h:1"), "http://h:1");
}

}  // namespace
}  // namespace ep
