// jinja::Value: the values a template computes with, with Python's semantics (truthiness,
// equality, str() and repr()), since chat templates are written against Python's jinja2.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

namespace ep::jinja {

class Value;
class Renderer;

struct Array;
class Object;
class Function;

class Value {
 public:
  enum class Kind : std::uint8_t {
    Undefined,
    None,
    Bool,
    Int,
    Float,
    String,
    Array,
    Object,
    Function
  };

  Value() = default;  // undefined
  Value(std::nullptr_t) : v_(std::monostate{}) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(static_cast<std::int64_t>(i)) {}
  Value(std::int64_t i) : v_(i) {}
  Value(double d) : v_(d) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::shared_ptr<Array> a) : v_(std::move(a)) {}
  Value(std::shared_ptr<Object> o) : v_(std::move(o)) {}
  Value(std::shared_ptr<const Function> f) : v_(std::move(f)) {}

  // An undefined value; `hint` says what was looked up, for the error if it is used.
  static Value undefined(std::string hint) {
    Value v;
    v.v_ = UndefinedTag{std::move(hint)};
    return v;
  }
  static Value array(std::vector<Value> items = {}, bool tuple = false);
  static Value object();
  // From JSON (objects keep their keys in the order the json type holds them: use
  // nlohmann::ordered_json to keep a document's own order).
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_undefined() const { return kind() == Kind::Undefined; }
  bool is_none() const { return kind() == Kind::None; }
  bool is_bool() const { return kind() == Kind::Bool; }
  bool is_int() const { return kind() == Kind::Int; }
  bool is_float() const { return kind() == Kind::Float; }
  bool is_number() const { return is_bool() || is_int() || is_float(); }  // Python: bool is an int
  bool is_string() const { return kind() == Kind::String; }
  bool is_array() const { return kind() == Kind::Array; }
  bool is_object() const { return kind() == Kind::Object; }
  bool is_function() const { return kind() == Kind::Function; }

  bool as_bool() const { return std::get<bool>(v_); }
  std::int64_t as_int() const { return std::get<std::int64_t>(v_); }
  double as_float() const { return std::get<double>(v_); }
  // An int or bool as an integer (callers check is_bool() || is_int()).
  std::int64_t to_int() const { return is_bool() ? (as_bool() ? 1 : 0) : as_int(); }
  // Any number as a double.
  double to_float() const { return is_float() ? as_float() : static_cast<double>(to_int()); }
  const std::string& as_string() const { return std::get<std::string>(v_); }
  Array& as_array() const { return *std::get<std::shared_ptr<Array>>(v_); }
  Object& as_object() const { return *std::get<std::shared_ptr<Object>>(v_); }
  const std::shared_ptr<Array>& array_ptr() const { return std::get<std::shared_ptr<Array>>(v_); }
  const std::shared_ptr<Object>& object_ptr() const {
    return std::get<std::shared_ptr<Object>>(v_);
  }
  const Function& as_function() const { return *std::get<std::shared_ptr<const Function>>(v_); }
  const std::string& undefined_hint() const { return std::get<UndefinedTag>(v_).hint; }

  bool truthy() const;            // Python's bool()
  std::string str() const;        // Python's str() (what {{ }} prints)
  std::string repr() const;       // Python's repr()
  std::string type_name() const;  // Python's type name, for errors: 'int', 'str', 'dict', ...

 private:
  struct UndefinedTag {
    std::string hint;
  };
  std::variant<UndefinedTag, std::monostate, bool, std::int64_t, double, std::string,
               std::shared_ptr<Array>, std::shared_ptr<Object>, std::shared_ptr<const Function>>
      v_;
};

// A list (or a tuple, which prints with parentheses and never equals a list).
struct Array {
  std::vector<Value> items;
  bool tuple = false;
};

// A dict with string keys in insertion order, or a namespace() (whose attributes can be set).
class Object {
 public:
  bool is_namespace = false;

  const Value* find(std::string_view key) const;
  void set(std::string key, Value value);
  const std::vector<std::pair<std::string, Value>>& entries() const { return entries_; }
  std::size_t size() const { return entries_.size(); }

 private:
  std::vector<std::pair<std::string, Value>> entries_;
  std::unordered_map<std::string, std::size_t> index_;  // built once there are many entries
};

// Arguments of a call: positional, then keyword (name=value) in the order written.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> named;
};

// Anything callable: macros, globals such as range(), bound methods such as "x".strip.
class Function {
 public:
  virtual ~Function() = default;
  virtual Value call(Renderer& renderer, CallArgs& args) const = 0;
  virtual std::string name() const = 0;
};

// Python's ==, with numbers compared across int, float and bool.
bool equal(const Value& a, const Value& b);
// Python's repr() of a float: the shortest digits that read back, "1.0", "1e-05", "1e+20".
std::string format_float(double d);
// The error for using an undefined value other than printing or testing it.
[[noreturn]] void fail_undefined(const Value& v);

}  // namespace ep::jinja
