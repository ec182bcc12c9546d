// Filters (`x | name(args)`): what chat templates use, with jinja2's arguments and defaults.
#include "core/error.h"
#include "jinja/renderer.h"
#include "jinja/utf8.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace ep::jinja {

namespace {

// attribute="a.b.0": item lookups along the dotted path.
Value attribute_path(const Value& v, const std::string& path) {
  Value cur = v;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    if (cur.is_undefined()) return cur;
    cur = digits && part.size() < 18
              ? get_item(cur, Value(static_cast<std::int64_t>(std::stoll(part))))
              : get_item(cur, Value(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

Value attribute_arg(const Value& v, const Value& attr) {
  if (attr.is_int()) return get_item(v, attr);
  if (!attr.is_string()) fail("attribute must be a string or an integer");
  return attribute_path(v, attr.as_string());
}

Value length(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'length'", args, {});
  switch (v.kind()) {
    case Value::Kind::String:
      return Value(static_cast<std::int64_t>(utf8::length(v.as_string())));
    case Value::Kind::Array:
      return Value(static_cast<std::int64_t>(v.as_array().items.size()));
    case Value::Kind::Object:
      return Value(static_cast<std::int64_t>(v.as_object().size()));
    case Value::Kind::Undefined:
      return Value(std::int64_t{0});
    default:
      fail("object of type '{}' has no len()", v.type_name());
  }
}

Value tojson(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a("filter 'tojson'", args, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonStyle style;
  style.ensure_ascii = a.flag(0, false);
  style.sort_keys = a.flag(3, false);
  const Value indent = a.get_or(1, Value(nullptr));
  if (indent.is_int() || indent.is_bool()) {
    style.pretty = true;
    style.indent = std::string(
        static_cast<std::size_t>(std::clamp<std::int64_t>(indent.to_int(), 0, 64)), ' ');
  } else if (indent.is_string()) {
    style.pretty = true;
    style.indent = indent.as_string();
  } else if (!indent.is_none()) {
    fail("tojson: indent must be an integer or a string");
  }
  if (style.pretty) style.item_separator = ",";
  const Value sep = a.get_or(2, Value(nullptr));
  if (sep.is_array() && sep.as_array().items.size() == 2 && sep.as_array().items[0].is_string() &&
      sep.as_array().items[1].is_string()) {
    style.item_separator = sep.as_array().items[0].as_string();
    style.key_separator = sep.as_array().items[1].as_string();
  } else if (!sep.is_none()) {
    fail("tojson: separators must be a pair of strings");
  }
  std::string out = to_json(v, style);
  r.check_length(out.size());
  return Value(std::move(out));
}

Value default_(Renderer&, const Value& v, CallArgs& args) {
  ArgReader a("filter 'default'", args, {"default_value", "boolean"});
  const bool use = a.flag(1, false) ? !v.truthy() : v.is_undefined();
  return use ? a.get_or(0, Value("")) : v;
}

Value join(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a("filter 'join'", args, {"d", "attribute"});
  const std::string sep = a.string(0, "");
  const Value* attr = a.get(1);
  std::string out;
  bool first = true;
  for (const auto& item : iterate(v)) {
    if (!first) out += sep;
    first = false;
    out += attr && !attr->is_none() ? attribute_arg(item, *attr).str() : item.str();
    r.check_length(out.size());
  }
  return Value(std::move(out));
}

// select / reject / selectattr / rejectattr: keep the items whose test (or truth) says so.
Value select(Renderer& r, const Value& v, CallArgs& args, bool keep, bool by_attr,
             std::string_view what) {
  if (!args.named.empty()) fail("filter '{}' takes no keyword arguments", what);
  std::size_t i = 0;
  Value attr;
  if (by_attr) {
    if (args.positional.empty()) fail("filter '{}' needs an attribute", what);
    attr = args.positional[i++];
  }
  std::string test;
  if (i < args.positional.size()) {
    if (!args.positional[i].is_string()) fail("filter '{}': the test name must be a string", what);
    test = args.positional[i++].as_string();
  }
  CallArgs test_args;
  test_args.positional.assign(args.positional.begin() + static_cast<std::ptrdiff_t>(i),
                              args.positional.end());
  std::vector<Value> out;
  for (auto& item : iterate(v)) {
    const Value subject = by_attr ? attribute_arg(item, attr) : item;
    bool ok = false;
    if (test.empty()) {
      ok = subject.truthy();
    } else {
      CallArgs a = test_args;
      ok = r.test(test, subject, a);
    }
    if (ok == keep) out.push_back(std::move(item));
  }
  return Value::array(std::move(out));
}

Value map(Renderer& r, const Value& v, CallArgs& args) {
  std::vector<Value> out;
  const Value* attr = nullptr;
  const Value* fallback = nullptr;
  for (const auto& [k, x] : args.named) {
    if (k == "attribute") {
      attr = &x;
    } else if (k == "default") {
      fallback = &x;
    }
  }
  if (attr) {
    for (const auto& item : iterate(v)) {
      Value x = attribute_arg(item, *attr);
      if (x.is_undefined() && fallback) x = *fallback;
      out.push_back(std::move(x));
    }
    return Value::array(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string()) {
    fail("filter 'map' needs a filter name or attribute=");
  }
  const std::string name = args.positional[0].as_string();
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.named = args.named;
  for (const auto& item : iterate(v)) {
    CallArgs a = rest;
    out.push_back(r.filter(name, item, a));
  }
  return Value::array(std::move(out));
}

Value items(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'items'", args, {});
  if (v.is_undefined()) return Value::array();
  if (!v.is_object()) fail("can only get item pairs from a mapping, not '{}'", v.type_name());
  std::vector<Value> out;
  for (const auto& [k, x] : v.as_object().entries())
    out.push_back(Value::array({Value(k), x}, true));
  return Value::array(std::move(out));
}

Value to_int(Renderer&, const Value& v, CallArgs& args) {
  ArgReader a("filter 'int'", args, {"default", "base"});
  const Value fallback = a.get_or(0, Value(std::int64_t{0}));
  const std::int64_t base = a.integer(1, 10);
  if (v.is_int()) return v;
  if (v.is_bool()) return Value(v.to_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_float()) || std::fabs(v.as_float()) > 9.2e18) return fallback;
    return Value(static_cast<std::int64_t>(v.as_float()));
  }
  if (!v.is_string()) return fallback;
  std::string s(utf8::strip(v.as_string()));
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.empty()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long i = std::strtoll(s.c_str(), &end, static_cast<int>(base));
  if (end && *end == '\0' && errno == 0) return Value(static_cast<std::int64_t>(i));
  const double d = std::strtod(s.c_str(), &end);
  if (base == 10 && end && *end == '\0' && std::isfinite(d) && std::fabs(d) < 9.2e18) {
    return Value(static_cast<std::int64_t>(d));
  }
  return fallback;
}

Value to_float(Renderer&, const Value& v, CallArgs& args) {
  ArgReader a("filter 'float'", args, {"default"});
  const Value fallback = a.get_or(0, Value(0.0));
  if (v.is_number()) return Value(v.to_float());
  if (!v.is_string()) return fallback;
  const std::string s(utf8::strip(v.as_string()));
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (!s.empty() && end && *end == '\0') return Value(d);
  return fallback;
}

Value indent(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a("filter 'indent'", args, {"width", "first", "blank"});
  const Value width = a.get_or(0, Value(std::int64_t{4}));
  std::string pad;
  if (width.is_string()) {
    pad = width.as_string();
  } else if (width.is_int() || width.is_bool()) {
    pad.assign(static_cast<std::size_t>(std::clamp<std::int64_t>(width.to_int(), 0, 1024)), ' ');
  } else {
    fail("indent: width must be an integer or a string");
  }
  const bool first = a.flag(1, false), blank = a.flag(2, false);
  const std::string s = v.str() + "\n";
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.push_back(s.substr(start, i - start));
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) out += '\n';
    if ((i > 0 || first) && (blank || !lines[i].empty())) out += pad;
    out += lines[i];
    r.check_length(out.size());
  }
  return Value(std::move(out));
}

// The sort key: strings compared case-insensitively unless case_sensitive.
Value sort_key(const Value& v, bool case_sensitive, const Value* attr) {
  Value k = attr && !attr->is_none() ? attribute_arg(v, *attr) : v;
  if (!case_sensitive && k.is_string()) return Value(to_lower(k.as_string()));
  return k;
}

Value sort(Renderer&, const Value& v, CallArgs& args) {
  ArgReader a("filter 'sort'", args, {"reverse", "case_sensitive", "attribute"});
  const bool reverse = a.flag(0, false), cs = a.flag(1, false);
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& item : iterate(v)) {
    Value k = sort_key(item, cs, a.get(2));
    keyed.emplace_back(std::move(k), std::move(item));
  }
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& x, const auto& y) {
    return reverse ? less_than(y.first, x.first) : less_than(x.first, y.first);
  });
  std::vector<Value> out;
  for (auto& [k, item] : keyed) out.push_back(std::move(item));
  return Value::array(std::move(out));
}

Value unique(Renderer&, const Value& v, CallArgs& args) {
  ArgReader a("filter 'unique'", args, {"case_sensitive", "attribute"});
  const bool cs = a.flag(0, false);
  std::vector<Value> keys, out;
  for (auto& item : iterate(v)) {
    Value k = sort_key(item, cs, a.get(1));
    if (std::any_of(keys.begin(), keys.end(), [&](const Value& x) { return equal(x, k); })) {
      continue;
    }
    keys.push_back(std::move(k));
    out.push_back(std::move(item));
  }
  return Value::array(std::move(out));
}

Value min_max(const Value& v, CallArgs& args, bool max, std::string_view what) {
  ArgReader a(what, args, {"case_sensitive", "attribute"});
  const bool cs = a.flag(0, false);
  const std::vector<Value> all = iterate(v);
  if (all.empty()) return Value::undefined(fmt::format("no {} item, sequence was empty", what));
  std::size_t best = 0;
  for (std::size_t i = 1; i < all.size(); ++i) {
    const Value ki = sort_key(all[i], cs, a.get(1)), kb = sort_key(all[best], cs, a.get(1));
    if (max ? less_than(kb, ki) : less_than(ki, kb)) best = i;
  }
  return all[best];
}

}  // namespace

FilterFn find_filter(std::string_view name) {
  using Entry = std::pair<std::string_view, FilterFn>;
  static const Entry kFilters[] = {
      {"length", length},
      {"count", length},
      {"tojson", tojson},
      {"default", default_},
      {"d", default_},
      {"join", join},
      {"items", items},
      {"int", to_int},
      {"float", to_float},
      {"indent", indent},
      {"sort", sort},
      {"unique", unique},
      {"map", map},
      {"select", [](Renderer& r, const Value& v,
                    CallArgs& a) { return select(r, v, a, true, false, "select"); }},
      {"reject", [](Renderer& r, const Value& v,
                    CallArgs& a) { return select(r, v, a, false, false, "reject"); }},
      {"selectattr", [](Renderer& r, const Value& v,
                        CallArgs& a) { return select(r, v, a, true, true, "selectattr"); }},
      {"rejectattr", [](Renderer& r, const Value& v,
                        CallArgs& a) { return select(r, v, a, false, true, "rejectattr"); }},
      {"min", [](Renderer&, const Value& v, CallArgs& a) { return min_max(v, a, false, "min"); }},
      {"max", [](Renderer&, const Value& v, CallArgs& a) { return min_max(v, a, true, "max"); }},
  };
  for (const auto& [n, f] : kFilters) {
    if (n == name) return f;
  }
  return find_string_filter(name);
}

}  // namespace ep::jinja
