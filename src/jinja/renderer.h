// The interpreter's state during one render: scopes, the output buffer, the limits. Internal to
// src/jinja/ (template.h is the interface).
#pragma once

#include "jinja/ast.h"
#include "jinja/template.h"
#include "jinja/value.h"

#include <string>
#include <string_view>
#include <vector>

namespace ep::jinja {

// Variables of one scope (the template's top level, a loop iteration, a macro call), looked up
// through the parents.
struct Scope {
  const Scope* parent = nullptr;
  std::vector<std::pair<std::string, Value>> vars;

  const Value* find(std::string_view name) const;
  void set(std::string_view name, Value value);
};

enum class Flow { Normal, Break, Continue };

class Renderer {
 public:
  Renderer(const Options& options, const Value& context);
  Renderer(const Renderer&) = delete;
  Renderer& operator=(const Renderer&) = delete;

  std::string run(const Body& body);

  Flow exec(const Body& body, Scope& scope);
  Value eval(const Expr& e, Scope& scope);

  // Calls a callable value (a macro, a global, a bound method).
  Value call(const Value& callee, CallArgs& args);
  Value call_macro(const MacroStmt& m, const Scope* closure, CallArgs& args, const Value& caller);
  Value filter(std::string_view name, const Value& input, CallArgs& args);
  bool test(std::string_view name, const Value& input, CallArgs& args);

  const Options& options() const { return options_; }
  Scope& root() { return root_; }
  void check_length(std::size_t bytes) const;  // a string value or the output too long
  void count_iterations(std::size_t n);        // the loop limit
  int line() const { return line_; }

 private:
  const Options& options_;
  Scope root_;
  std::string* out_ = nullptr;
  std::int64_t iterations_ = 0;
  int call_depth_ = 0;
  int line_ = 0;

  void emit(std::string_view text);
  Flow exec_for(const ForStmt& s, Scope& scope);
  void exec_set(const SetStmt& s, Scope& scope);
  std::string capture(const Body& body, Scope& scope);
  Value eval_call(const CallExpr& e, Scope& scope);
  Value eval_binary(const BinaryExpr& e, Scope& scope);
  Value eval_compare(const CompareExpr& e, Scope& scope);
  Value eval_slice(const SliceExpr& e, Scope& scope);
  void eval_args(const CallArgsExpr& a, Scope& scope, CallArgs& out);
  Value apply_filters(const std::vector<std::unique_ptr<FilterExpr>>& filters, Value v,
                      Scope& scope);
};

// jinja2's attribute and item access: a missing key or attribute is undefined; using undefined
// itself fails.
Value get_attr(const Value& object, std::string_view name);
Value get_item(const Value& object, const Value& key);
// The items a for loop (or a filter) walks: a list's items, a dict's keys, a string's
// characters; undefined walks nothing.
std::vector<Value> iterate(const Value& v);
// Python's binary operators (+ - * / // % ** ~) and ordering comparisons (< <= > >=).
Value binary_op(std::string_view op, const Value& a, const Value& b, const Renderer& r);
bool less_than(const Value& a, const Value& b);
bool contains(const Value& container, const Value& item);

// builtins: filters (filters.cpp, filters_more.cpp), tests (tests.cpp), methods of str and dict
// (methods.cpp), globals (globals.cpp), JSON (json_out.cpp).
using FilterFn = Value (*)(Renderer&, const Value&, CallArgs&);
using TestFn = bool (*)(Renderer&, const Value&, CallArgs&);
FilterFn find_filter(std::string_view name);
FilterFn find_string_filter(std::string_view name);  // filters_more.cpp
TestFn find_test(std::string_view name);
bool has_method(const Value& object, std::string_view name);
Value call_method(Renderer& r, const Value& object, std::string_view name, CallArgs& args);
Value bound_method(const Value& object, std::string_view name);
const Value* find_global(std::string_view name);

struct JsonStyle {
  std::string indent;  // per level; none when !pretty
  bool pretty = false;
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
  bool ensure_ascii = false;
};
std::string to_json(const Value& v, const JsonStyle& style);

// Reads the arguments of a builtin by position or name, rejecting unknown ones.
class ArgReader {
 public:
  ArgReader(std::string_view what, const CallArgs& args,
            std::initializer_list<std::string_view> names);
  const Value* get(std::size_t i) const;
  Value get_or(std::size_t i, Value fallback) const {
    const Value* v = get(i);
    return v ? *v : std::move(fallback);
  }
  bool flag(std::size_t i, bool fallback) const {
    const Value* v = get(i);
    return v ? v->truthy() : fallback;
  }
  std::int64_t integer(std::size_t i, std::int64_t fallback) const;
  std::string string(std::size_t i, std::string fallback) const;

 private:
  std::string what_;
  std::vector<const Value*> slots_;
};

}  // namespace ep::jinja

namespace ep::jinja {

// Python's str methods shared with the filters (case mapping of ASCII letters only).
std::string to_upper(std::string_view s);
std::string to_lower(std::string_view s);
std::string capitalize(std::string_view s);
std::string replace(const std::string& s, const std::string& old, const std::string& with,
                    std::int64_t count, const Renderer& r);
Value split(const std::string& s, const Value& sep, std::int64_t maxsplit);

}  // namespace ep::jinja
