// Methods called on values: str.startswith(...), dict.items(), ... (what chat templates use).
#include "core/error.h"
#include "jinja/renderer.h"
#include "jinja/utf8.h"

#include <algorithm>
#include <array>

namespace ep::jinja {

namespace {

constexpr std::array<std::string_view, 23> kStringMethods = {
    "startswith", "endswith",   "strip",   "lstrip",  "rstrip",  "split",  "upper",      "lower",
    "title",      "capitalize", "replace", "find",    "count",   "join",   "splitlines", "isdigit",
    "isalpha",    "isalnum",    "isspace", "islower", "isupper", "format", "rsplit"};
constexpr std::array<std::string_view, 4> kDictMethods = {"items", "keys", "values", "get"};

template <std::size_t N>
bool in(const std::array<std::string_view, N>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string title(std::string_view s) {
  std::string out(s);
  bool prev_cased = false;
  for (char& c : out) {
    if (is_alpha(c)) {
      c = prev_cased ? static_cast<char>(c | 0x20) : static_cast<char>(c & ~0x20);
      prev_cased = true;
    } else {
      prev_cased = false;
    }
  }
  return out;
}

bool prefix_test(const std::string& s, const Value& arg, bool ends, std::string_view what) {
  auto one = [&](const Value& p) {
    if (!p.is_string()) fail("{} arg must be str or a tuple of str, not {}", what, p.type_name());
    const auto& x = p.as_string();
    if (x.size() > s.size()) return false;
    return ends ? s.compare(s.size() - x.size(), x.size(), x) == 0 : s.compare(0, x.size(), x) == 0;
  };
  if (arg.is_array()) {
    return std::any_of(arg.as_array().items.begin(), arg.as_array().items.end(), one);
  }
  return one(arg);
}

template <typename Pred>
bool all_chars(const std::string& s, Pred p) {
  return !s.empty() && std::all_of(s.begin(), s.end(), p);
}

Value string_method(Renderer& r, const std::string& s, std::string_view name, CallArgs& args) {
  const std::string what = fmt::format("str.{}()", name);
  if (name == "startswith" || name == "endswith") {
    ArgReader a(what, args, {"prefix"});
    if (!a.get(0)) fail("{} takes exactly one argument", what);
    return Value(prefix_test(s, *a.get(0), name == "endswith", name));
  }
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    ArgReader a(what, args, {"chars"});
    const Value chars = a.get_or(0, Value(nullptr));
    const bool left = name != "rstrip", right = name != "lstrip";
    if (chars.is_string()) return Value(utf8::strip_chars(s, chars.as_string(), left, right));
    if (!chars.is_none()) fail("{} arg must be None or str", what);
    std::string_view v = s;
    if (right) v = utf8::rstrip(v);
    if (left) v = utf8::lstrip(v);
    return Value(v);
  }
  if (name == "split" || name == "rsplit") {
    ArgReader a(what, args, {"sep", "maxsplit"});
    if (name == "rsplit" && a.integer(1, -1) >= 0)
      fail("str.rsplit() with maxsplit is not supported");
    return split(s, a.get_or(0, Value(nullptr)), a.integer(1, -1));
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    ArgReader a(what, args, {});
    if (name == "upper") return Value(to_upper(s));
    if (name == "lower") return Value(to_lower(s));
    if (name == "title") return Value(title(s));
    return Value(capitalize(s));
  }
  if (name == "replace") {
    ArgReader a(what, args, {"old", "new", "count"});
    return Value(replace(s, a.string(0, ""), a.string(1, ""), a.integer(2, -1), r));
  }
  if (name == "find" || name == "count") {
    ArgReader a(what, args, {"sub"});
    const std::string sub = a.string(0, "");
    if (name == "find") {
      const auto at = s.find(sub);
      if (at == std::string::npos) return Value(std::int64_t{-1});
      return Value(static_cast<std::int64_t>(utf8::length(std::string_view(s).substr(0, at))));
    }
    if (sub.empty()) return Value(static_cast<std::int64_t>(utf8::length(s) + 1));
    std::int64_t n = 0;
    for (auto at = s.find(sub); at != std::string::npos; at = s.find(sub, at + sub.size())) ++n;
    return Value(n);
  }
  if (name == "join") {
    ArgReader a(what, args, {"iterable"});
    if (!a.get(0)) fail("{} takes exactly one argument", what);
    std::string out;
    bool first = true;
    for (const auto& item : iterate(*a.get(0))) {
      if (!item.is_string())
        fail("sequence item: expected str instance, {} found", item.type_name());
      if (!first) out += s;
      first = false;
      out += item.as_string();
      r.check_length(out.size());
    }
    return Value(std::move(out));
  }
  if (name == "splitlines") {
    ArgReader a(what, args, {});
    std::vector<Value> lines;
    std::size_t start = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '\n' || s[i] == '\r') {
        lines.emplace_back(s.substr(start, i - start));
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
    if (start < s.size()) lines.emplace_back(s.substr(start));
    return Value::array(std::move(lines));
  }
  if (name == "format") fail("str.format() is not supported");
  ArgReader a(what, args, {});
  if (name == "isdigit") return Value(all_chars(s, is_digit));
  if (name == "isalpha") return Value(all_chars(s, is_alpha));
  if (name == "isalnum")
    return Value(all_chars(s, [](char c) { return is_alpha(c) || is_digit(c); }));
  if (name == "isspace") {
    return Value(!s.empty() && utf8::space_prefix(s) == s.size());
  }
  const bool upper = name == "isupper";
  bool cased = false;
  for (char c : s) {
    if (!is_alpha(c)) continue;
    if (((c & 0x20) == 0) != upper) return Value(false);
    cased = true;
  }
  return Value(cased);
}

Value dict_method(const Object& o, std::string_view name, CallArgs& args) {
  const std::string what = fmt::format("dict.{}()", name);
  if (name == "get") {
    ArgReader a(what, args, {"key", "default"});
    const Value* key = a.get(0);
    if (!key) fail("dict.get() takes at least one argument");
    if (key->is_string()) {
      if (const Value* v = o.find(key->as_string())) return *v;
    }
    return a.get_or(1, Value(nullptr));
  }
  ArgReader a(what, args, {});
  std::vector<Value> out;
  out.reserve(o.size());
  for (const auto& [k, v] : o.entries()) {
    if (name == "keys") {
      out.emplace_back(k);
    } else if (name == "values") {
      out.push_back(v);
    } else {
      out.push_back(Value::array({Value(k), v}, true));
    }
  }
  return Value::array(std::move(out));
}

class BoundMethod : public Function {
 public:
  BoundMethod(Value object, std::string name)
      : object_(std::move(object)), name_(std::move(name)) {}
  Value call(Renderer& r, CallArgs& args) const override {
    return call_method(r, object_, name_, args);
  }
  std::string name() const override { return object_.type_name() + "." + name_; }

 private:
  Value object_;
  std::string name_;
};

}  // namespace

std::string to_upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  }
  return out;
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  }
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out = to_lower(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

std::string replace(const std::string& s, const std::string& old, const std::string& with,
                    std::int64_t count, const Renderer& r) {
  std::string out;
  std::int64_t done = 0;
  if (old.empty()) {
    // Python inserts `with` before every code point and at the end.
    for (std::size_t i = 0, len = 0; i < s.size(); i += len) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      utf8::decode(s, i, &len);
      out.append(s, i, len);
      r.check_length(out.size());
    }
    if (count < 0 || done < count) out += with;
    return out;
  }
  std::size_t pos = 0;
  while (count < 0 || done < count) {
    const auto at = s.find(old, pos);
    if (at == std::string::npos) break;
    out.append(s, pos, at - pos);
    out += with;
    r.check_length(out.size());
    pos = at + old.size();
    ++done;
  }
  out.append(s, pos);
  return out;
}

Value split(const std::string& s, const Value& sep, std::int64_t maxsplit) {
  std::vector<Value> parts;
  if (sep.is_none()) {
    std::string_view rest = s;
    while (true) {
      rest = utf8::lstrip(rest);
      if (rest.empty()) break;
      if (maxsplit >= 0 && static_cast<std::int64_t>(parts.size()) >= maxsplit) {
        parts.emplace_back(utf8::rstrip(rest));
        break;
      }
      std::size_t end = 0;
      for (std::size_t len = 0; end < rest.size(); end += len) {
        if (utf8::is_space(utf8::decode(rest, end, &len))) break;
      }
      parts.emplace_back(rest.substr(0, end));
      rest = rest.substr(end);
    }
    return Value::array(std::move(parts));
  }
  if (!sep.is_string()) fail("str.split(): sep must be str or None, not {}", sep.type_name());
  const auto& d = sep.as_string();
  if (d.empty()) fail("empty separator");
  std::size_t pos = 0;
  while (maxsplit < 0 || static_cast<std::int64_t>(parts.size()) < maxsplit) {
    const auto at = s.find(d, pos);
    if (at == std::string::npos) break;
    parts.emplace_back(s.substr(pos, at - pos));
    pos = at + d.size();
  }
  parts.emplace_back(s.substr(pos));
  return Value::array(std::move(parts));
}

bool has_method(const Value& object, std::string_view name) {
  if (object.is_string()) return in(kStringMethods, name);
  if (object.is_object()) return !object.as_object().is_namespace && in(kDictMethods, name);
  return false;
}

Value bound_method(const Value& object, std::string_view name) {
  return Value(
      std::shared_ptr<const Function>(std::make_shared<BoundMethod>(object, std::string(name))));
}

Value call_method(Renderer& r, const Value& object, std::string_view name, CallArgs& args) {
  if (object.is_string()) return string_method(r, object.as_string(), name, args);
  if (object.is_object()) return dict_method(object.as_object(), name, args);
  fail("'{}' object has no method '{}'", object.type_name(), name);
}

}  // namespace ep::jinja
