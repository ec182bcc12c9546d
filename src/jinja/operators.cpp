// Python's operators on Values, and jinja2's attribute / item access.
#include "core/error.h"
#include "jinja/renderer.h"
#include "jinja/utf8.h"

#include <cmath>

namespace ep::jinja {

namespace {

[[noreturn]] void unsupported(std::string_view op, const Value& a, const Value& b) {
  fail("unsupported operand type(s) for {}: '{}' and '{}'", op, a.type_name(), b.type_name());
}

template <typename Op>
std::int64_t checked(Op op, std::int64_t a, std::int64_t b) {
  std::int64_t v = 0;
  if (op(a, b, &v)) fail("integer overflow");
  return v;
}
constexpr auto kAdd = [](std::int64_t a, std::int64_t b, std::int64_t* v) {
  return __builtin_add_overflow(a, b, v);
};
constexpr auto kSub = [](std::int64_t a, std::int64_t b, std::int64_t* v) {
  return __builtin_sub_overflow(a, b, v);
};
constexpr auto kMul = [](std::int64_t a, std::int64_t b, std::int64_t* v) {
  return __builtin_mul_overflow(a, b, v);
};

// Python's floor division and modulo (the result takes the divisor's sign).
std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  if (a == INT64_MIN && b == -1) fail("integer overflow");
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

Value repeat(const Value& seq, std::int64_t n, const Renderer& r) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const auto& s = seq.as_string();
    if (!s.empty() && static_cast<std::uint64_t>(n) > r.options().max_output_bytes / s.size()) {
      r.check_length(r.options().max_output_bytes + 1);
    }
    std::string out;
    out.reserve(s.size() * static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) out += s;
    return Value(std::move(out));
  }
  const auto& a = seq.as_array();
  if (!a.items.empty() &&
      static_cast<std::uint64_t>(n) > r.options().max_output_bytes / a.items.size()) {
    fail("list repetition too long");
  }
  std::vector<Value> out;
  for (std::int64_t i = 0; i < n; ++i) out.insert(out.end(), a.items.begin(), a.items.end());
  return Value::array(std::move(out), a.tuple);
}

}  // namespace

Value binary_op(std::string_view op, const Value& a, const Value& b, const Renderer& r) {
  if (op == "~") {
    std::string s = a.str();
    s += b.str();
    r.check_length(s.size());
    return Value(std::move(s));
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  const bool ints = (a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool());
  const bool nums = a.is_number() && b.is_number();
  if (op == "+") {
    if (ints) return Value(checked(kAdd, a.to_int(), b.to_int()));
    if (nums) return Value(a.to_float() + b.to_float());
    if (a.is_string() && b.is_string()) {
      r.check_length(a.as_string().size() + b.as_string().size());
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_array() && b.is_array() && a.as_array().tuple == b.as_array().tuple) {
      std::vector<Value> items = a.as_array().items;
      items.insert(items.end(), b.as_array().items.begin(), b.as_array().items.end());
      return Value::array(std::move(items), a.as_array().tuple);
    }
    if ((a.is_string() && !b.is_string()) || (b.is_string() && !a.is_string())) {
      if (a.is_string()) fail("can only concatenate str (not \"{}\") to str", b.type_name());
    }
    unsupported(op, a, b);
  }
  if (op == "-") {
    if (ints) return Value(checked(kSub, a.to_int(), b.to_int()));
    if (nums) return Value(a.to_float() - b.to_float());
    unsupported(op, a, b);
  }
  if (op == "*") {
    if (ints) return Value(checked(kMul, a.to_int(), b.to_int()));
    if (nums) return Value(a.to_float() * b.to_float());
    if ((a.is_string() || a.is_array()) && (b.is_int() || b.is_bool())) {
      return repeat(a, b.to_int(), r);
    }
    if ((b.is_string() || b.is_array()) && (a.is_int() || a.is_bool())) {
      return repeat(b, a.to_int(), r);
    }
    unsupported(op, a, b);
  }
  if (!nums) unsupported(op, a, b);
  if (op == "/") {
    if (b.to_float() == 0.0) fail("division by zero");
    return Value(a.to_float() / b.to_float());
  }
  if (op == "//") {
    if (ints) {
      if (b.to_int() == 0) fail("integer division or modulo by zero");
      return Value(floor_div(a.to_int(), b.to_int()));
    }
    if (b.to_float() == 0.0) fail("float floor division by zero");
    return Value(std::floor(a.to_float() / b.to_float()));
  }
  if (op == "%") {
    if (ints) {
      if (b.to_int() == 0) fail("integer division or modulo by zero");
      if (b.to_int() == -1) return Value(std::int64_t{0});
      std::int64_t m = a.to_int() % b.to_int();
      if (m != 0 && ((m < 0) != (b.to_int() < 0))) m += b.to_int();
      return Value(m);
    }
    if (b.to_float() == 0.0) fail("float modulo");
    double m = std::fmod(a.to_float(), b.to_float());
    if (m != 0 && ((m < 0) != (b.to_float() < 0))) m += b.to_float();
    return Value(m);
  }
  if (op == "**") {
    if (ints && b.to_int() >= 0) {
      std::int64_t base = a.to_int(), e = b.to_int(), result = 1;
      while (e > 0) {
        if (e & 1) result = checked(kMul, result, base);
        e >>= 1;
        if (e > 0) base = checked(kMul, base, base);
      }
      return Value(result);
    }
    if (a.to_float() == 0.0 && b.to_float() < 0) fail("zero to a negative power");
    return Value(std::pow(a.to_float(), b.to_float()));
  }
  fail("unknown operator '{}'", op);
}

bool less_than(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_float() || b.is_float()) return a.to_float() < b.to_float();
    return a.to_int() < b.to_int();
  }
  if (a.is_string() && b.is_string()) return a.as_string() < b.as_string();
  if (a.is_array() && b.is_array()) {
    const auto& x = a.as_array().items;
    const auto& y = b.as_array().items;
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equal(x[i], y[i])) return less_than(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  fail("'<' not supported between instances of '{}' and '{}'", a.type_name(), b.type_name());
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::String:
      if (!item.is_string()) {
        fail("'in <string>' requires string as left operand, not {}", item.type_name());
      }
      return container.as_string().find(item.as_string()) != std::string::npos;
    case Value::Kind::Array:
      for (const auto& e : container.as_array().items) {
        if (equal(e, item)) return true;
      }
      return false;
    case Value::Kind::Object:
      return item.is_string() && container.as_object().find(item.as_string()) != nullptr;
    case Value::Kind::Undefined:
      return false;
    default:
      fail("argument of type '{}' is not iterable", container.type_name());
  }
}

Value get_attr(const Value& object, std::string_view name) {
  switch (object.kind()) {
    case Value::Kind::Undefined:
      fail_undefined(object);
    case Value::Kind::Object: {
      const auto& o = object.as_object();
      if (!o.is_namespace && has_method(object, name)) return bound_method(object, name);
      if (const Value* v = o.find(name)) return *v;
      return Value::undefined(
          fmt::format("'{} object' has no attribute '{}'", object.type_name(), name));
    }
    default:
      if (has_method(object, name)) return bound_method(object, name);
      return Value::undefined(
          fmt::format("'{} object' has no attribute '{}'", object.type_name(), name));
  }
}

Value get_item(const Value& object, const Value& key) {
  switch (object.kind()) {
    case Value::Kind::Undefined:
      fail_undefined(object);
    case Value::Kind::Object: {
      if (key.is_string()) {
        if (const Value* v = object.as_object().find(key.as_string())) return *v;
        return Value::undefined(
            fmt::format("'{} object' has no attribute '{}'", object.type_name(), key.as_string()));
      }
      break;
    }
    case Value::Kind::Array: {
      if (!key.is_int() && !key.is_bool()) break;
      const auto& items = object.as_array().items;
      std::int64_t i = key.to_int();
      const auto n = static_cast<std::int64_t>(items.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return items[static_cast<std::size_t>(i)];
      return Value::undefined(
          fmt::format("{} object has no element {}", object.type_name(), key.to_int()));
    }
    case Value::Kind::String: {
      if (!key.is_int() && !key.is_bool()) break;
      const auto& s = object.as_string();
      std::int64_t i = key.to_int();
      if (utf8::is_ascii(s)) {
        const auto n = static_cast<std::int64_t>(s.size());
        if (i < 0) i += n;
        if (i >= 0 && i < n) return Value(std::string(1, s[static_cast<std::size_t>(i)]));
      } else {
        const auto off = utf8::offsets(s);
        const auto n = static_cast<std::int64_t>(off.size()) - 1;
        if (i < 0) i += n;
        if (i >= 0 && i < n) {
          const auto at = static_cast<std::size_t>(i);
          return Value(s.substr(off[at], off[at + 1] - off[at]));
        }
      }
      return Value::undefined(fmt::format("str object has no element {}", key.to_int()));
    }
    default:
      break;
  }
  if (key.is_string()) return get_attr(object, key.as_string());
  return Value::undefined(
      fmt::format("'{} object' has no attribute {}", object.type_name(), key.repr()));
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::Undefined:
      return {};
    case Value::Kind::Array:
      return v.as_array().items;
    case Value::Kind::Object: {
      std::vector<Value> keys;
      keys.reserve(v.as_object().size());
      for (const auto& [k, e] : v.as_object().entries()) keys.emplace_back(k);
      return keys;
    }
    case Value::Kind::String: {
      std::vector<Value> chars;
      const auto& s = v.as_string();
      for (std::size_t i = 0, len = 0; i < s.size(); i += len) {
        utf8::decode(s, i, &len);
        chars.emplace_back(s.substr(i, len));
      }
      return chars;
    }
    default:
      fail("'{}' object is not iterable", v.type_name());
  }
}

ArgReader::ArgReader(std::string_view what, const CallArgs& args,
                     std::initializer_list<std::string_view> names)
    : what_(what), slots_(names.size(), nullptr) {
  if (args.positional.size() > names.size()) {
    fail("{} takes at most {} argument(s) ({} given)", what_, names.size(), args.positional.size());
  }
  for (std::size_t i = 0; i < args.positional.size(); ++i) slots_[i] = &args.positional[i];
  for (const auto& [name, value] : args.named) {
    std::size_t i = 0;
    for (const auto n : names) {
      if (n == name) break;
      ++i;
    }
    if (i == names.size()) fail("{} got an unexpected keyword argument '{}'", what_, name);
    if (slots_[i]) fail("{} got multiple values for argument '{}'", what_, name);
    slots_[i] = &value;
  }
}

const Value* ArgReader::get(std::size_t i) const {
  return i < slots_.size() ? slots_[i] : nullptr;
}

std::int64_t ArgReader::integer(std::size_t i, std::int64_t fallback) const {
  const Value* v = get(i);
  if (!v || v->is_none()) return fallback;
  if (!v->is_int() && !v->is_bool())
    fail("{}: expected an integer, got '{}'", what_, v->type_name());
  return v->to_int();
}

std::string ArgReader::string(std::size_t i, std::string fallback) const {
  const Value* v = get(i);
  if (!v) return fallback;
  if (!v->is_string()) fail("{}: expected a string, got '{}'", what_, v->type_name());
  return v->as_string();
}

}  // namespace ep::jinja
