#include "jinja/lexer.h"

#include "core/error.h"
#include "jinja/utf8.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>

namespace ep::jinja {

namespace {

// jinja2 treats \r\n, \r and \n as line breaks and drops one at the very end.
std::string normalise(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (std::size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      out += '\n';
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

class Lexer {
 public:
  Lexer(std::string source, const LexOptions& options) : src_(std::move(source)), opt_(options) {
    line_starts_.push_back(0);
    for (std::size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> run() {
    std::size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      const std::size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        emit_text(pos, src_.substr(pos));
        break;
      }
      const char kind = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() ? src_[tag + 2] : '\0';
      if (sign != '-' && sign != '+') sign = '\0';
      std::string_view text(src_.data() + pos, tag - pos);
      if (sign == '-') {
        text = utf8::rstrip(text);
      } else if (sign != '+' && opt_.lstrip_blocks && kind != '{') {
        const auto nl = text.rfind('\n');
        const std::size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() &&
            utf8::space_prefix(text.substr(l_pos)) == text.size() - l_pos) {
          text = text.substr(0, l_pos);
        }
      }
      emit_text(pos, text);
      pos = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        pos = skip_comment(tag, pos);
      } else if (kind == '%' && is_raw(pos)) {
        pos = lex_raw(tag, pos);
      } else {
        pos = lex_tag(tag, pos, kind == '%');
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    Token end;
    end.type = TokenType::End;
    locate(src_.size(), end);
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

 private:
  std::string src_;
  LexOptions opt_;
  std::vector<std::size_t> line_starts_;
  std::vector<Token> tokens_;

  void locate(std::size_t offset, Token& t) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    const auto line = static_cast<std::size_t>(it - line_starts_.begin());
    t.line = static_cast<int>(line);
    t.column = static_cast<int>(offset - line_starts_[line - 1] + 1);
  }

  [[noreturn]] void error_at(std::size_t offset, const std::string& message) const {
    Token t;
    locate(offset, t);
    fail("line {}, column {}: {}", t.line, t.column, message);
  }

  std::size_t find_tag(std::size_t pos) const {
    while (true) {
      pos = src_.find('{', pos);
      if (pos == std::string::npos || pos + 1 >= src_.size()) return std::string::npos;
      const char c = src_[pos + 1];
      if (c == '{' || c == '%' || c == '#') return pos;
      ++pos;
    }
  }

  void emit_text(std::size_t offset, std::string_view text) {
    if (text.empty()) return;
    Token t;
    t.type = TokenType::Text;
    t.text = std::string(text);
    locate(offset, t);
    tokens_.push_back(std::move(t));
  }

  void push(TokenType type, std::size_t offset, std::string text = {}) {
    Token t;
    t.type = type;
    t.text = std::move(text);
    locate(offset, t);
    tokens_.push_back(std::move(t));
  }

  bool starts(std::size_t pos, std::string_view s) const {
    return src_.compare(pos, s.size(), s) == 0;
  }

  // After a block tag's end: `-%}` strips all following whitespace; a plain `%}` drops one
  // newline when trim_blocks is on; `+%}` keeps everything.
  std::size_t after_block_end(std::size_t pos, char sign, std::size_t delim) {
    pos += delim;
    if (sign == '-') return pos + utf8::space_prefix(std::string_view(src_).substr(pos));
    if (sign == '\0' && opt_.trim_blocks && pos < src_.size() && src_[pos] == '\n') ++pos;
    return pos;
  }

  std::size_t skip_comment(std::size_t tag, std::size_t pos) {
    for (std::size_t i = pos; i + 1 < src_.size(); ++i) {
      if ((src_[i] == '-' || src_[i] == '+') && starts(i + 1, "#}")) {
        return after_block_end(i, src_[i], 3);
      }
      if (starts(i, "#}")) return after_block_end(i, '\0', 2);
    }
    error_at(tag, "missing end of comment tag");
  }

  std::size_t skip_spaces(std::size_t pos) const {
    while (pos < src_.size() && (src_[pos] == ' ' || src_[pos] == '\t' || src_[pos] == '\n' ||
                                 src_[pos] == '\r' || src_[pos] == '\f' || src_[pos] == '\v')) {
      ++pos;
    }
    return pos;
  }

  bool word_at(std::size_t pos, std::string_view word) const {
    if (!starts(pos, word)) return false;
    const std::size_t e = pos + word.size();
    return e >= src_.size() || !(is_name_start(src_[e]) || is_digit(src_[e]));
  }

  // `{% raw %}`: the position after the tag's end if it is one, else 0.
  std::size_t raw_end(std::size_t pos) const {
    pos = skip_spaces(pos);
    if (!word_at(pos, "raw")) return 0;
    pos = skip_spaces(pos + 3);
    if (starts(pos, "-%}"))
      return pos + 3 + utf8::space_prefix(std::string_view(src_).substr(pos + 3));
    if (starts(pos, "%}")) return pos + 2;
    return 0;
  }
  bool is_raw(std::size_t pos) const { return raw_end(pos) != 0; }

  std::size_t lex_raw(std::size_t tag, std::size_t pos) {
    const std::size_t body = raw_end(pos);
    for (std::size_t i = body; i + 1 < src_.size(); ++i) {
      if (!starts(i, "{%")) continue;
      std::size_t j = i + 2;
      char sign = '\0';
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) sign = src_[j++];
      j = skip_spaces(j);
      if (!word_at(j, "endraw")) continue;
      j = skip_spaces(j + 6);
      char end_sign = '\0';
      if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) end_sign = src_[j++];
      if (!starts(j, "%}")) continue;
      std::string_view text(src_.data() + body, i - body);
      if (sign == '-') text = utf8::rstrip(text);
      emit_text(body, text);
      return after_block_end(j - (end_sign ? 1 : 0), end_sign, end_sign ? 3 : 2);
    }
    error_at(tag, "missing end of raw directive");
  }

  std::size_t lex_tag(std::size_t tag, std::size_t pos, bool block) {
    push(block ? TokenType::BlockBegin : TokenType::VarBegin, tag);
    std::vector<char> balance;
    while (true) {
      pos = skip_spaces(pos);
      if (pos >= src_.size()) {
        error_at(tag, block ? "unexpected end of template: block tag not closed"
                            : "unexpected end of template: '{{' not closed");
      }
      if (balance.empty()) {
        const char c = src_[pos];
        if (block) {
          if ((c == '-' || c == '+') && starts(pos + 1, "%}")) {
            push(TokenType::BlockEnd, pos);
            return after_block_end(pos, c, 3);
          }
          if (starts(pos, "%}")) {
            push(TokenType::BlockEnd, pos);
            return after_block_end(pos, '\0', 2);
          }
        } else {
          if (c == '-' && starts(pos + 1, "}}")) {
            push(TokenType::VarEnd, pos);
            return pos + 3 + utf8::space_prefix(std::string_view(src_).substr(pos + 3));
          }
          if (starts(pos, "}}")) {
            push(TokenType::VarEnd, pos);
            return pos + 2;
          }
        }
      }
      pos = lex_token(pos, balance);
    }
  }

  std::size_t lex_token(std::size_t pos, std::vector<char>& balance) {
    const char c = src_[pos];
    if (is_name_start(c)) {
      std::size_t e = pos;
      while (e < src_.size() && (is_name_start(src_[e]) || is_digit(src_[e]))) ++e;
      push(TokenType::Name, pos, src_.substr(pos, e - pos));
      return e;
    }
    if (is_digit(c)) return lex_number(pos);
    if (c == '\'' || c == '"') return lex_string(pos);
    static constexpr std::string_view kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "*",
                                                "/",  "%",  "~",  "<",  ">",  "=",  ".", ":", "|",
                                                ",",  ";",  "(",  ")",  "[",  "]",  "{", "}"};
    for (const auto op : kOps) {
      if (!starts(pos, op)) continue;
      if (op == "(" || op == "[" || op == "{") {
        balance.push_back(op == "(" ? ')' : op == "[" ? ']' : '}');
      } else if (op == ")" || op == "]" || op == "}") {
        if (balance.empty()) error_at(pos, fmt::format("unexpected '{}'", op));
        if (balance.back() != op[0]) {
          error_at(pos, fmt::format("unexpected '{}', expected '{}'", op, balance.back()));
        }
        balance.pop_back();
      }
      push(TokenType::Op, pos, std::string(op));
      return pos + op.size();
    }
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7F) error_at(pos, fmt::format("unexpected character '{}'", c));
    error_at(pos, fmt::format("unexpected byte 0x{:02x}", u));
  }

  std::size_t lex_number(std::size_t pos) {
    std::size_t e = pos;
    std::string digits;
    auto take_digits = [&](auto accept) {
      while (e < src_.size() && (accept(src_[e]) || (src_[e] == '_' && e + 1 < src_.size() &&
                                                     accept(src_[e + 1]) && !digits.empty()))) {
        if (src_[e] != '_') digits += src_[e];
        ++e;
      }
    };
    if (src_[pos] == '0' && pos + 1 < src_.size() &&
        std::string_view("xXoObB").find(src_[pos + 1]) != std::string_view::npos) {
      const char p = static_cast<char>(src_[pos + 1] | 0x20);
      const int base = p == 'x' ? 16 : p == 'o' ? 8 : 2;
      e = pos + 2;
      take_digits([base](char ch) {
        if (base == 16) return std::isxdigit(static_cast<unsigned char>(ch)) != 0;
        return ch >= '0' && ch < static_cast<char>('0' + base);
      });
      Token t;
      t.type = TokenType::Int;
      locate(pos, t);
      if (digits.empty() ||
          std::from_chars(digits.data(), digits.data() + digits.size(), t.int_value, base).ec !=
              std::errc{}) {
        error_at(pos, "invalid integer literal");
      }
      tokens_.push_back(std::move(t));
      return e;
    }
    take_digits(is_digit);
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
      is_float = true;
      digits += src_[e++];
      take_digits(is_digit);
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      std::size_t k = e + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        is_float = true;
        digits += 'e';
        digits.append(src_, e + 1, k - e - 1);
        e = k;
        const std::size_t before = digits.size();
        take_digits(is_digit);
        (void)before;
      }
    }
    Token t;
    locate(pos, t);
    if (is_float) {
      t.type = TokenType::Float;
      t.float_value = std::strtod(digits.c_str(), nullptr);
    } else {
      t.type = TokenType::Int;
      if (std::from_chars(digits.data(), digits.data() + digits.size(), t.int_value).ec !=
          std::errc{}) {
        error_at(pos, "integer literal out of range");
      }
    }
    tokens_.push_back(std::move(t));
    return e;
  }

  // A quoted literal with Python's escapes (\n \t \\ \' \xHH \uHHHH ...); unknown escapes stay.
  std::size_t lex_string(std::size_t pos) {
    const char q = src_[pos];
    std::string value;
    std::size_t i = pos + 1;
    while (true) {
      if (i >= src_.size()) error_at(pos, "unterminated string literal");
      const char c = src_[i];
      if (c == q) break;
      if (c != '\\') {
        value += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) error_at(pos, "unterminated string literal");
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n':
          value += '\n';
          break;
        case 't':
          value += '\t';
          break;
        case 'r':
          value += '\r';
          break;
        case 'a':
          value += '\a';
          break;
        case 'b':
          value += '\b';
          break;
        case 'f':
          value += '\f';
          break;
        case 'v':
          value += '\v';
          break;
        case '\\':
          value += '\\';
          break;
        case '\'':
          value += '\'';
          break;
        case '"':
          value += '"';
          break;
        case '\n':
          break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          const std::size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          std::uint32_t cp = 0;
          if (i + n > src_.size() ||
              std::from_chars(src_.data() + i, src_.data() + i + n, cp, 16).ptr !=
                  src_.data() + i + n) {
            error_at(i - 2, fmt::format("truncated \\{} escape in string literal", e));
          }
          if (cp > 0x10FFFF) error_at(i - 2, "escape beyond Unicode in string literal");
          utf8::append(value, cp);
          i += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            std::uint32_t cp = static_cast<std::uint32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k) {
              cp = cp * 8 + static_cast<std::uint32_t>(src_[i++] - '0');
            }
            utf8::append(value, cp);
          } else {
            value += '\\';
            value += e;
          }
      }
    }
    Token t;
    t.type = TokenType::String;
    t.text = std::move(value);
    locate(pos, t);
    tokens_.push_back(std::move(t));
    return i + 1;
  }
};

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& options) {
  return Lexer(normalise(source), options).run();
}

}  // namespace ep::jinja
