// The template's tokens: text between tags, tag delimiters and the expression tokens inside
// tags, with jinja2's whitespace control (`{%-`, `-%}`, `{%+`, trim_blocks, lstrip_blocks).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ep::jinja {

enum class TokenType : std::uint8_t {
  Text,        // template data, already stripped as the whitespace rules say
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,  // the literal's value, escapes resolved
  Int,
  Float,
  Op,  // text holds the operator: + - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { }
  End,
};

struct Token {
  TokenType type = TokenType::End;
  std::string text;
  std::int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

struct LexOptions {
  bool trim_blocks = false;
  bool lstrip_blocks = false;
};

// Splits `source` (newlines normalised to \n, one trailing newline dropped, as jinja2 does) into
// tokens. Throws ep::Error "line L, column C: ..." for malformed input.
std::vector<Token> tokenize(std::string_view source, const LexOptions& options);

}  // namespace ep::jinja
