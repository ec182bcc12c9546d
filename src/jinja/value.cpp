#include "jinja/value.h"

#include "core/error.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace ep::jinja {

namespace {

constexpr int kMaxDepth = 256;  // nesting of values printed, compared or converted

template <typename Json>
Value convert(const Json& j, int depth) {
  if (depth > kMaxDepth) fail("JSON value nested deeper than {} levels", kMaxDepth);
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      return Value(nullptr);
    case nlohmann::json::value_t::boolean:
      return Value(j.template get<bool>());
    case nlohmann::json::value_t::number_integer:
      return Value(j.template get<std::int64_t>());
    case nlohmann::json::value_t::number_unsigned: {
      const auto u = j.template get<std::uint64_t>();
      if (u <= static_cast<std::uint64_t>(INT64_MAX)) return Value(static_cast<std::int64_t>(u));
      return Value(static_cast<double>(u));
    }
    case nlohmann::json::value_t::number_float:
      return Value(j.template get<double>());
    case nlohmann::json::value_t::string:
      return Value(j.template get_ref<const std::string&>());
    case nlohmann::json::value_t::array: {
      auto a = std::make_shared<Array>();
      a->items.reserve(j.size());
      for (const auto& e : j) a->items.push_back(convert(e, depth + 1));
      return Value(std::move(a));
    }
    case nlohmann::json::value_t::object: {
      auto o = std::make_shared<Object>();
      for (auto it = j.begin(); it != j.end(); ++it)
        o->set(it.key(), convert(it.value(), depth + 1));
      return Value(std::move(o));
    }
    default:
      fail("JSON value of an unsupported type (binary)");
  }
}

// Python's repr() of a str: single quotes unless the text holds ' and no ".
void repr_string(std::string& out, const std::string& s) {
  const bool dq = s.find('\'') != std::string::npos && s.find('"') == std::string::npos;
  const char q = dq ? '"' : '\'';
  out += q;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == q || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += q;
}

void write(std::string& out, const Value& v, bool repr, int depth) {
  if (depth > kMaxDepth) fail("value nested deeper than {} levels", kMaxDepth);
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return;
    case Value::Kind::None:
      out += "None";
      return;
    case Value::Kind::Bool:
      out += v.as_bool() ? "True" : "False";
      return;
    case Value::Kind::Int:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::Float:
      out += format_float(v.as_float());
      return;
    case Value::Kind::String:
      if (repr) {
        repr_string(out, v.as_string());
      } else {
        out += v.as_string();
      }
      return;
    case Value::Kind::Array: {
      const auto& a = v.as_array();
      out += a.tuple ? '(' : '[';
      for (std::size_t i = 0; i < a.items.size(); ++i) {
        if (i) out += ", ";
        write(out, a.items[i], true, depth + 1);
      }
      if (a.tuple && a.items.size() == 1) out += ',';
      out += a.tuple ? ')' : ']';
      return;
    }
    case Value::Kind::Object: {
      const auto& o = v.as_object();
      if (o.is_namespace) out += "<Namespace ";
      out += '{';
      bool first = true;
      for (const auto& [k, e] : o.entries()) {
        if (!first) out += ", ";
        first = false;
        repr_string(out, k);
        out += ": ";
        write(out, e, true, depth + 1);
      }
      out += '}';
      if (o.is_namespace) out += '>';
      return;
    }
    case Value::Kind::Function:
      out += "<function " + v.as_function().name() + ">";
      return;
  }
}

bool equal_at(const Value& a, const Value& b, int depth) {
  if (depth > kMaxDepth) fail("value nested deeper than {} levels", kMaxDepth);
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_float() == b.to_float();
    return a.to_int() == b.to_int();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::Undefined:
    case Value::Kind::None:
      return true;
    case Value::Kind::String:
      return a.as_string() == b.as_string();
    case Value::Kind::Array: {
      const auto& x = a.as_array();
      const auto& y = b.as_array();
      if (&x == &y) return true;
      if (x.tuple != y.tuple || x.items.size() != y.items.size()) return false;
      for (std::size_t i = 0; i < x.items.size(); ++i) {
        if (!equal_at(x.items[i], y.items[i], depth + 1)) return false;
      }
      return true;
    }
    case Value::Kind::Object: {
      const auto& x = a.as_object();
      const auto& y = b.as_object();
      if (&x == &y) return true;
      if (x.is_namespace || y.is_namespace) return false;  // compared by identity in Python
      if (x.size() != y.size()) return false;
      for (const auto& [k, e] : x.entries()) {
        const Value* f = y.find(k);
        if (!f || !equal_at(e, *f, depth + 1)) return false;
      }
      return true;
    }
    case Value::Kind::Function:
      return &a.as_function() == &b.as_function();
    default:
      return false;
  }
}

}  // namespace

const Value* Object::find(std::string_view key) const {
  if (!index_.empty()) {
    const auto it = index_.find(std::string(key));
    return it == index_.end() ? nullptr : &entries_[it->second].second;
  }
  for (const auto& [k, v] : entries_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void Object::set(std::string key, Value value) {
  if (!index_.empty()) {
    const auto it = index_.find(key);
    if (it != index_.end()) {
      entries_[it->second].second = std::move(value);
      return;
    }
  } else {
    for (auto& [k, v] : entries_) {
      if (k == key) {
        v = std::move(value);
        return;
      }
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
  constexpr std::size_t kIndexFrom = 16;
  if (entries_.size() == kIndexFrom) {
    for (std::size_t i = 0; i < entries_.size(); ++i) index_.emplace(entries_[i].first, i);
  } else if (entries_.size() > kIndexFrom) {
    index_.emplace(entries_.back().first, entries_.size() - 1);
  }
}

Value Value::array(std::vector<Value> items, bool tuple) {
  auto a = std::make_shared<Array>();
  a->items = std::move(items);
  a->tuple = tuple;
  return Value(std::move(a));
}

Value Value::object() {
  return Value(std::make_shared<Object>());
}

Value Value::from_json(const nlohmann::json& j) {
  return convert(j, 0);
}
Value Value::from_json(const nlohmann::ordered_json& j) {
  return convert(j, 0);
}

bool Value::truthy() const {
  switch (kind()) {
    case Kind::Undefined:
    case Kind::None:
      return false;
    case Kind::Bool:
      return as_bool();
    case Kind::Int:
      return as_int() != 0;
    case Kind::Float:
      return as_float() != 0.0;
    case Kind::String:
      return !as_string().empty();
    case Kind::Array:
      return !as_array().items.empty();
    case Kind::Object:
      return as_object().is_namespace || as_object().size() != 0;
    case Kind::Function:
      return true;
  }
  return false;
}

std::string Value::str() const {
  if (is_string()) return as_string();
  std::string out;
  write(out, *this, false, 0);
  return out;
}

std::string Value::repr() const {
  std::string out;
  write(out, *this, true, 0);
  return out;
}

std::string Value::type_name() const {
  switch (kind()) {
    case Kind::Undefined:
      return "Undefined";
    case Kind::None:
      return "NoneType";
    case Kind::Bool:
      return "bool";
    case Kind::Int:
      return "int";
    case Kind::Float:
      return "float";
    case Kind::String:
      return "str";
    case Kind::Array:
      return as_array().tuple ? "tuple" : "list";
    case Kind::Object:
      return as_object().is_namespace ? "Namespace" : "dict";
    case Kind::Function:
      return "function";
  }
  return "object";
}

bool equal(const Value& a, const Value& b) {
  return equal_at(a, b, 0);
}

std::string format_float(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d < 0 ? "-inf" : "inf";
  // The shortest round-trip digits, then Python's layout: positional for exponents in [-4, 16).
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  const std::string sci(buf, r.ptr);
  const auto e_pos = sci.find('e');
  const int exp = std::stoi(sci.substr(e_pos + 1));
  std::string mantissa = sci.substr(0, e_pos);
  const bool negative = mantissa[0] == '-';
  if (negative) mantissa.erase(0, 1);
  std::string digits;
  for (char c : mantissa) {
    if (c != '.') digits += c;
  }
  std::string out = negative ? "-" : "";
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      out += "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    } else if (static_cast<std::size_t>(exp) + 1 >= digits.size()) {
      out += digits + std::string(static_cast<std::size_t>(exp) + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, static_cast<std::size_t>(exp) + 1) + "." +
             digits.substr(static_cast<std::size_t>(exp) + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char ebuf[16];
  std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  return out + ebuf;
}

void fail_undefined(const Value& v) {
  const auto& hint = v.undefined_hint();
  if (hint.empty()) fail("undefined value used");
  fail("{}", hint);
}

}  // namespace ep::jinja
