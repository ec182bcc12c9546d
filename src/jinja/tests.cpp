// The `is` tests: defined, none, string, number, mapping, iterable, equalto, odd, ...
#include "core/error.h"
#include "jinja/renderer.h"

#include <cmath>
#include <string_view>
#include <utility>

namespace ep::jinja {

namespace {

const Value& one(const CallArgs& args, std::string_view test) {
  ArgReader r(fmt::format("test '{}'", test), args, {"other"});
  const Value* v = r.get(0);
  if (!v) fail("test '{}' needs an argument", test);
  return *v;
}

std::int64_t integer_of(const Value& v, std::string_view test) {
  if (v.is_undefined()) fail_undefined(v);
  if (!v.is_int() && !v.is_bool())
    fail("test '{}' needs an integer, got '{}'", test, v.type_name());
  return v.to_int();
}

bool is_lower(const std::string& s, bool upper) {
  bool cased = false;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') {
      if (upper) return false;
      cased = true;
    } else if (c >= 'A' && c <= 'Z') {
      if (!upper) return false;
      cased = true;
    }
  }
  return cased;
}

using Entry = std::pair<std::string_view, TestFn>;

const Entry kTests[] = {
    {"defined", [](Renderer&, const Value& v, CallArgs&) { return !v.is_undefined(); }},
    {"undefined", [](Renderer&, const Value& v, CallArgs&) { return v.is_undefined(); }},
    {"none", [](Renderer&, const Value& v, CallArgs&) { return v.is_none(); }},
    {"boolean", [](Renderer&, const Value& v, CallArgs&) { return v.is_bool(); }},
    {"true", [](Renderer&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }},
    {"false", [](Renderer&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }},
    {"integer", [](Renderer&, const Value& v, CallArgs&) { return v.is_int(); }},
    {"float", [](Renderer&, const Value& v, CallArgs&) { return v.is_float(); }},
    {"number", [](Renderer&, const Value& v, CallArgs&) { return v.is_number(); }},
    {"string", [](Renderer&, const Value& v, CallArgs&) { return v.is_string(); }},
    {"mapping", [](Renderer&, const Value& v,
                   CallArgs&) { return v.is_object() && !v.as_object().is_namespace; }},
    {"sequence",
     [](Renderer&, const Value& v, CallArgs&) {
       return v.is_string() || v.is_array() || (v.is_object() && !v.as_object().is_namespace);
     }},
    {"iterable",
     [](Renderer&, const Value& v, CallArgs&) {
       return v.is_string() || v.is_array() || v.is_undefined() ||
              (v.is_object() && !v.as_object().is_namespace);
     }},
    {"callable", [](Renderer&, const Value& v, CallArgs&) { return v.is_function(); }},
    {"odd", [](Renderer&, const Value& v, CallArgs&) { return integer_of(v, "odd") % 2 != 0; }},
    {"even", [](Renderer&, const Value& v, CallArgs&) { return integer_of(v, "even") % 2 == 0; }},
    {"divisibleby",
     [](Renderer&, const Value& v, CallArgs& a) {
       const auto d = integer_of(one(a, "divisibleby"), "divisibleby");
       if (d == 0) fail("integer division or modulo by zero");
       return integer_of(v, "divisibleby") % d == 0;
     }},
    {"lower", [](Renderer&, const Value& v,
                 CallArgs&) { return v.is_string() && is_lower(v.as_string(), false); }},
    {"upper", [](Renderer&, const Value& v,
                 CallArgs&) { return v.is_string() && is_lower(v.as_string(), true); }},
    {"equalto", [](Renderer&, const Value& v, CallArgs& a) { return equal(v, one(a, "equalto")); }},
    {"eq", [](Renderer&, const Value& v, CallArgs& a) { return equal(v, one(a, "eq")); }},
    {"==", [](Renderer&, const Value& v, CallArgs& a) { return equal(v, one(a, "==")); }},
    {"ne", [](Renderer&, const Value& v, CallArgs& a) { return !equal(v, one(a, "ne")); }},
    {"!=", [](Renderer&, const Value& v, CallArgs& a) { return !equal(v, one(a, "!=")); }},
    {"lt", [](Renderer&, const Value& v, CallArgs& a) { return less_than(v, one(a, "lt")); }},
    {"<", [](Renderer&, const Value& v, CallArgs& a) { return less_than(v, one(a, "<")); }},
    {"lessthan",
     [](Renderer&, const Value& v, CallArgs& a) { return less_than(v, one(a, "lessthan")); }},
    {"le", [](Renderer&, const Value& v, CallArgs& a) { return !less_than(one(a, "le"), v); }},
    {"<=", [](Renderer&, const Value& v, CallArgs& a) { return !less_than(one(a, "<="), v); }},
    {"gt", [](Renderer&, const Value& v, CallArgs& a) { return less_than(one(a, "gt"), v); }},
    {">", [](Renderer&, const Value& v, CallArgs& a) { return less_than(one(a, ">"), v); }},
    {"greaterthan",
     [](Renderer&, const Value& v, CallArgs& a) { return less_than(one(a, "greaterthan"), v); }},
    {"ge", [](Renderer&, const Value& v, CallArgs& a) { return !less_than(v, one(a, "ge")); }},
    {">=", [](Renderer&, const Value& v, CallArgs& a) { return !less_than(v, one(a, ">=")); }},
    {"in", [](Renderer&, const Value& v, CallArgs& a) { return contains(one(a, "in"), v); }},
    {"sameas",
     [](Renderer&, const Value& v, CallArgs& a) {
       const Value& o = one(a, "sameas");
       if (v.kind() != o.kind()) return false;
       if (v.is_none() || v.is_undefined()) return true;
       if (v.is_bool()) return v.as_bool() == o.as_bool();
       if (v.is_array()) return &v.as_array() == &o.as_array();
       if (v.is_object()) return &v.as_object() == &o.as_object();
       return equal(v, o);
     }},
};

}  // namespace

TestFn find_test(std::string_view name) {
  for (const auto& [n, f] : kTests) {
    if (n == name) return f;
  }
  return nullptr;
}

}  // namespace ep::jinja
