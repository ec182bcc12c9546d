// The auth file (http/auth.h): SHA-256 against published test vectors, the parser's errors by
// line, and which token authenticates as whom.
#include "http/auth.h"

#include "core/error.h"

#include <gtest/gtest.h>

#include <string>

namespace ep {
namespace {

std::string hex(const http::TokenHash& h) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (const uint8_t b : h) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string error_of(const std::string& text) {
  try {
    http::AuthTable::parse(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const std::string kAbc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

TEST(ParserAuthFile, Sha256MatchesFips180Vectors) {
  EXPECT_EQ(hex(http::hash_token("abc")), kAbc);
  EXPECT_EQ(hex(http::hash_token("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(http::same_hash(http::hash_token("abc"), http::hash_token("abc")));
  EXPECT_FALSE(http::same_hash(http::hash_token("abc"), http::hash_token("abd")));
}

TEST(ParserAuthFile, EntriesCommentsAndWhoATokenIs) {
  const std::string text = "# tenants\n\nacme admin " + kAbc + "  # the operator\r\n" +
                           "\tglobex\tclient\t" + hex(http::hash_token("g-client")) + "\n" +
                           "acme edge " + hex(http::hash_token("edge-1"));
  const auto t = http::AuthTable::parse(text);
  EXPECT_EQ(t.size(), 3u);
  const auto admin = t.authenticate("Bearer abc");
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->tenant, "acme");
  EXPECT_EQ(admin->role, http::Role::Admin);
  EXPECT_EQ(t.authenticate("Bearer edge-1")->role, http::Role::Edge);
  EXPECT_EQ(t.authenticate("Bearer g-client")->tenant, "globex");
  EXPECT_FALSE(t.authenticate("Bearer abcd"));
  EXPECT_FALSE(t.authenticate("Bearer "));
  EXPECT_FALSE(t.authenticate("abc"));
  EXPECT_FALSE(t.authenticate("Basic abc"));
  EXPECT_FALSE(t.authenticate(""));
  // Upper-case hex is the same hash.
  std::string upper = kAbc;
  for (char& c : upper) c = char(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(http::AuthTable::parse("a client " + upper).authenticate("Bearer abc"));
}

TEST(ParserAuthFile, MalformedLinesNameTheirLine) {
  EXPECT_NE(error_of("").find("no entries"), std::string::npos);
  EXPECT_NE(error_of("# only a comment\n").find("no entries"), std::string::npos);
  EXPECT_NE(error_of("\nacme admin\n").find("line 2: expected 'TENANT ROLE SHA256-HEX'"),
            std::string::npos);
  EXPECT_NE(error_of("acme root " + kAbc).find("line 1: role must be admin, edge or client"),
            std::string::npos);
  EXPECT_NE(error_of("ac/me admin " + kAbc).find("line 1: tenant must be"), std::string::npos);
  EXPECT_NE(error_of("acme~x admin " + kAbc).find("tenant must be"), std::string::npos);
  EXPECT_NE(error_of(std::string(65, 'a') + " admin " + kAbc).find("tenant must be"),
            std::string::npos);
  EXPECT_NE(error_of("acme admin " + kAbc.substr(1)).find("64 hex digits"), std::string::npos);
  EXPECT_NE(error_of("acme admin " + kAbc.substr(1) + "g").find("64 hex digits"),
            std::string::npos);
  EXPECT_NE(error_of("acme admin " + kAbc + " extra").find("got 4 field(s)"), std::string::npos);
  EXPECT_NE(error_of("a admin " + kAbc + "\nb client " + kAbc).find("line 2: a token listed twice"),
            std::string::npos);
}

}  // namespace
}  // namespace ep
