// More filters: text (trim, upper, replace, title, ...) and sequences (first, last, list, ...).
#include "core/error.h"
#include "jinja/renderer.h"
#include "jinja/utf8.h"

#include <algorithm>
#include <cmath>

namespace ep::jinja {

namespace {

Value trim(Renderer&, const Value& v, CallArgs& args) {
  ArgReader a("filter 'trim'", args, {"chars"});
  const std::string s = v.str();
  const Value chars = a.get_or(0, Value(nullptr));
  if (chars.is_string()) return Value(utf8::strip_chars(s, chars.as_string(), true, true));
  return Value(utf8::strip(s));
}

// jinja2's title filter: each word (split at spaces, hyphens and opening brackets) gets an
// upper-case first letter and lower-case rest.
Value title(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'title'", args, {});
  std::string s = to_lower(v.str());
  bool start = true;
  for (char& c : s) {
    const bool sep = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' ||
                     c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
    if (sep) {
      start = true;
    } else {
      if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
      start = false;
    }
  }
  return Value(std::move(s));
}

Value replace_filter(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a("filter 'replace'", args, {"old", "new", "count"});
  const Value* old = a.get(0);
  const Value* with = a.get(1);
  if (!old || !with) fail("filter 'replace' needs the old and the new text");
  return Value(replace(v.str(), old->str(), with->str(), a.integer(2, -1), r));
}

Value list(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'list'", args, {});
  if (v.is_array() && !v.as_array().tuple) return Value::array(v.as_array().items);
  return Value::array(iterate(v));
}

Value first(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'first'", args, {});
  const auto all = iterate(v);
  if (all.empty()) return Value::undefined("No first item, sequence was empty.");
  return all.front();
}

Value last(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'last'", args, {});
  if (v.is_object()) fail("'dict' object is not reversible");
  const auto all = iterate(v);
  if (all.empty()) return Value::undefined("No last item, sequence was empty.");
  return all.back();
}

Value reverse(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'reverse'", args, {});
  if (v.is_string()) {
    std::string out;
    const auto chars = iterate(v);
    for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += it->as_string();
    return Value(std::move(out));
  }
  if (v.is_object()) fail("argument to reversed() must be a sequence");
  auto all = iterate(v);
  std::reverse(all.begin(), all.end());
  return Value::array(std::move(all));
}

Value abs_(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'abs'", args, {});
  if (v.is_float()) return Value(std::fabs(v.as_float()));
  if (v.is_int() || v.is_bool()) {
    if (v.to_int() == INT64_MIN) fail("integer overflow");
    return Value(v.to_int() < 0 ? -v.to_int() : v.to_int());
  }
  fail("bad operand type for abs(): '{}'", v.type_name());
}

Value round_(Renderer&, const Value& v, CallArgs& args) {
  ArgReader a("filter 'round'", args, {"precision", "method"});
  const std::int64_t precision = std::clamp<std::int64_t>(a.integer(0, 0), 0, 15);
  const std::string method = a.string(1, "common");
  if (!v.is_number()) fail("filter 'round' needs a number, got '{}'", v.type_name());
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.to_float() * scale;
  double r = 0;
  if (method == "common") {
    r = std::round(x);
  } else if (method == "ceil") {
    r = std::ceil(x);
  } else if (method == "floor") {
    r = std::floor(x);
  } else {
    fail("method must be common, ceil or floor");
  }
  return Value(r / scale);
}

Value sum(Renderer& r, const Value& v, CallArgs& args) {
  ArgReader a("filter 'sum'", args, {"attribute", "start"});
  Value total = a.get_or(1, Value(std::int64_t{0}));
  for (const auto& item : iterate(v)) {
    const Value* attr = a.get(0);
    const Value x = attr && attr->is_string() ? get_item(item, *attr) : item;
    total = binary_op("+", total, x, r);
  }
  return total;
}

Value escape(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'escape'", args, {});
  std::string out;
  for (char c : v.str()) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return Value(std::move(out));
}

Value wordcount(Renderer&, const Value& v, CallArgs& args) {
  ArgReader("filter 'wordcount'", args, {});
  return Value(
      static_cast<std::int64_t>(split(v.str(), Value(nullptr), -1).as_array().items.size()));
}

Value dictsort(Renderer&, const Value& v, CallArgs& args) {
  ArgReader a("filter 'dictsort'", args, {"case_sensitive", "by", "reverse"});
  if (!v.is_object()) fail("filter 'dictsort' needs a dict, got '{}'", v.type_name());
  const bool cs = a.flag(0, false), reverse = a.flag(2, false);
  const bool by_value = a.string(1, "key") == "value";
  std::vector<Value> pairs;
  for (const auto& [k, x] : v.as_object().entries())
    pairs.push_back(Value::array({Value(k), x}, true));
  auto key = [&](const Value& p) {
    const Value& k = p.as_array().items[by_value ? 1 : 0];
    return !cs && k.is_string() ? Value(to_lower(k.as_string())) : k;
  };
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    return reverse ? less_than(key(y), key(x)) : less_than(key(x), key(y));
  });
  return Value::array(std::move(pairs));
}

}  // namespace

FilterFn find_string_filter(std::string_view name) {
  using Entry = std::pair<std::string_view, FilterFn>;
  static const Entry kFilters[] = {
      {"trim", trim},
      {"title", title},
      {"replace", replace_filter},
      {"list", list},
      {"first", first},
      {"last", last},
      {"reverse", reverse},
      {"abs", abs_},
      {"round", round_},
      {"sum", sum},
      {"escape", escape},
      {"e", escape},
      {"wordcount", wordcount},
      {"dictsort", dictsort},
      {"upper",
       [](Renderer&, const Value& v, CallArgs& a) {
         ArgReader("filter 'upper'", a, {});
         return Value(to_upper(v.str()));
       }},
      {"lower",
       [](Renderer&, const Value& v, CallArgs& a) {
         ArgReader("filter 'lower'", a, {});
         return Value(to_lower(v.str()));
       }},
      {"capitalize",
       [](Renderer&, const Value& v, CallArgs& a) {
         ArgReader("filter 'capitalize'", a, {});
         return Value(capitalize(v.str()));
       }},
      {"string",
       [](Renderer&, const Value& v, CallArgs& a) {
         ArgReader("filter 'string'", a, {});
         return Value(v.str());
       }},
      {"safe",
       [](Renderer&, const Value& v, CallArgs& a) {
         ArgReader("filter 'safe'", a, {});
         return v.is_string() ? v : Value(v.str());
       }},
  };
  for (const auto& [n, f] : kFilters) {
    if (n == name) return f;
  }
  return nullptr;
}

}  // namespace ep::jinja
