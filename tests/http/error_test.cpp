// The error kinds of the HTTP services: each kind's status and OpenAI type, the kind a status
// received from elsewhere stands for, and the OpenAI-shaped error body (http/error.h,
// http/response.h).
#include "http/error.h"
#include "http/response.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <set>
#include <string>
#include <vector>

namespace ep {
namespace {

using http::ErrorKind;
using json = nlohmann::json;

struct KindCase {
  ErrorKind kind;
  int status;
  const char* type;
};

const std::vector<KindCase> kKinds = {
    {ErrorKind::InvalidRequest, 400, "invalid_request_error"},
    {ErrorKind::Unauthorized, 401, "authentication_error"},
    {ErrorKind::Forbidden, 403, "permission_error"},
    {ErrorKind::NotFound, 404, "not_found_error"},
    {ErrorKind::ModelMismatch, 409, "model_mismatch"},
    {ErrorKind::LengthRequired, 411, "invalid_request_error"},
    {ErrorKind::PayloadTooLarge, 413, "invalid_request_error"},
    {ErrorKind::TooManyRequests, 429, "rate_limit_error"},
    {ErrorKind::Upstream, 502, "cloud_error"},
    {ErrorKind::Unavailable, 503, "unavailable_error"},
    {ErrorKind::Internal, 500, "server_error"},
};

std::set<std::string> keys_of(const json& object) {
  std::set<std::string> keys;
  for (const auto& [key, value] : object.items()) keys.insert(key);
  return keys;
}

TEST(HttpError, EveryKindHasItsStatusAndOpenAiType) {
  for (const KindCase& c : kKinds) {
    SCOPED_TRACE(c.status);
    EXPECT_EQ(http::status_of(c.kind), c.status);
    EXPECT_EQ(http::type_of(c.kind), c.type);
    const http::HttpError e(c.kind, "what went wrong");
    EXPECT_EQ(e.kind(), c.kind);
    EXPECT_EQ(e.status(), c.status);
    EXPECT_STREQ(e.what(), "what went wrong");
  }
}

TEST(HttpError, KindOfStatusMapsStatusesBack) {
  EXPECT_EQ(http::kind_of_status(400), ErrorKind::InvalidRequest);
  EXPECT_EQ(http::kind_of_status(401), ErrorKind::Unauthorized);
  EXPECT_EQ(http::kind_of_status(403), ErrorKind::Forbidden);
  EXPECT_EQ(http::kind_of_status(404), ErrorKind::NotFound);
  EXPECT_EQ(http::kind_of_status(409), ErrorKind::ModelMismatch);
  EXPECT_EQ(http::kind_of_status(413), ErrorKind::PayloadTooLarge);
  EXPECT_EQ(http::kind_of_status(429), ErrorKind::TooManyRequests);
  EXPECT_EQ(http::kind_of_status(503), ErrorKind::Unavailable);
  // Any other 4xx is the client's fault; any 5xx (and anything else) a failure of the service.
  for (const int status : {402, 405, 408, 418, 422, 499}) {
    EXPECT_EQ(http::kind_of_status(status), ErrorKind::InvalidRequest) << status;
  }
  for (const int status : {500, 501, 502, 504, 599}) {
    EXPECT_EQ(http::kind_of_status(status), ErrorKind::Internal) << status;
  }
  // Each kind's own status maps back to it, except Upstream (a 502 received is a server error).
  for (const KindCase& c : kKinds) {
    if (c.kind == ErrorKind::Upstream) continue;
    EXPECT_EQ(http::kind_of_status(c.status), c.kind) << c.status;
  }
}

TEST(HttpError, FailThrowsAnHttpErrorWithTheFormattedMessage) {
  try {
    http::fail(ErrorKind::Forbidden, "prompt '{}' belongs to tenant {}", "bank", 7);
    FAIL() << "fail() returned";
  } catch (const http::HttpError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Forbidden);
    EXPECT_STREQ(e.what(), "prompt 'bank' belongs to tenant 7");
  }
  // An HttpError is an ep::Error, so code that catches ep::Error sees it too.
  EXPECT_THROW(http::fail(ErrorKind::NotFound, "gone"), Error);
}

TEST(HttpError, ErrorBodyHasExactlyTheOpenAiShape) {
  for (const KindCase& c : kKinds) {
    SCOPED_TRACE(c.status);
    const json body = http::error_body(c.kind, "no such model");
    ASSERT_TRUE(body.is_object());
    EXPECT_EQ(keys_of(body), std::set<std::string>{"error"});
    const json& e = body.at("error");
    ASSERT_TRUE(e.is_object());
    EXPECT_EQ(keys_of(e), (std::set<std::string>{"message", "type", "param", "code"}));
    EXPECT_EQ(e.at("message"), "no such model");
    EXPECT_EQ(e.at("type"), c.type);
    EXPECT_TRUE(e.at("param").is_null());
    ASSERT_TRUE(e.at("code").is_number_integer());
    EXPECT_EQ(e.at("code").get<int>(), c.status);
  }
}

TEST(HttpError, SendErrorSetsStatusAndJsonBody) {
  httplib::Response res;
  http::send_error(res, ErrorKind::ModelMismatch, "the cloud runs another model");
  EXPECT_EQ(res.status, 409);
  EXPECT_EQ(res.get_header_value("Content-Type"), "application/json");
  ASSERT_FALSE(res.body.empty());
  EXPECT_EQ(res.body.back(), '\n');  // one line of JSON
  EXPECT_EQ(res.body.find('\n'), res.body.size() - 1);
  EXPECT_EQ(json::parse(res.body),
            http::error_body(ErrorKind::ModelMismatch, "the cloud runs another model"));

  httplib::Response from_error;
  http::send_error(from_error, http::HttpError(ErrorKind::Unavailable, "busy"));
  EXPECT_EQ(from_error.status, 503);
  EXPECT_EQ(json::parse(from_error.body), http::error_body(ErrorKind::Unavailable, "busy"));
  EXPECT_FALSE(from_error.has_header("Retry-After"));

  httplib::Response full;
  http::send_error(full, ErrorKind::TooManyRequests, "the queue is full");
  EXPECT_EQ(full.status, 429);
  EXPECT_EQ(full.get_header_value("Retry-After"), "1");
}

TEST(HttpError, SendJsonSetsStatusAndOneLine) {
  httplib::Response res;
  http::send_json(res, {{"id", "x"}, {"n", 3}}, 201);
  EXPECT_EQ(res.status, 201);
  EXPECT_EQ(res.body, "{\"id\":\"x\",\"n\":3}\n");
  httplib::Response plain;
  http::send_json(plain, json::array());
  EXPECT_EQ(plain.status, 200);
  EXPECT_EQ(plain.body, "[]\n");
}

TEST(HttpError, InvalidUtf8InTheMessageStillGivesValidJson) {
  // A message may quote bytes of a request: a lone continuation byte, an overlong form, a
  // truncated character.
  const std::string message = "bad bytes: \x80 \xC0\xAF \xE2\x82 end";
  httplib::Response res;
  ASSERT_NO_THROW(http::send_error(res, ErrorKind::InvalidRequest, message));
  EXPECT_EQ(res.status, 400);
  json body;
  ASSERT_NO_THROW(body = json::parse(res.body)) << res.body;
  const std::string back = body.at("error").at("message").get<std::string>();
  EXPECT_EQ(back.rfind("bad bytes: ", 0), 0u);
  EXPECT_NE(back.find("\xEF\xBF\xBD"), std::string::npos);  // replaced by U+FFFD
  EXPECT_NE(back.find(" end"), std::string::npos);
  // The replaced message is itself valid UTF-8: it dumps strictly.
  EXPECT_NO_THROW((void)json(back).dump());
}

TEST(HttpError, ErrorMessageOfReadsTheMessageBack) {
  httplib::Response res;
  http::send_error(res, ErrorKind::NotFound, "unknown cloud prompt 'bank'");
  EXPECT_EQ(http::error_message_of(res.body), "unknown cloud prompt 'bank'");
  EXPECT_EQ(http::error_message_of(http::error_body(ErrorKind::Internal, "x\ny").dump()), "x\ny");
  // Anything else comes back unchanged.
  for (const std::string body :
       {"", "Bad Gateway", "<html>502</html>", "{\"detail\": \"nope\"}", "{\"error\": \"flat\"}",
        "{\"error\": {\"message\": 42}}", "[1, 2]", "{\"error\": {\"message\": \"cut"}) {
    EXPECT_EQ(http::error_message_of(body), body);
  }
}

}  // namespace
}  // namespace ep
