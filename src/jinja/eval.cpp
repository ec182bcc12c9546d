// Expressions: Renderer::eval and its helpers.
#include "core/error.h"
#include "jinja/renderer.h"
#include "jinja/utf8.h"

namespace ep::jinja {

namespace {

// Python's slice bounds for a sequence of n items.
std::vector<std::size_t> slice_indices(std::int64_t n, const Value& start, const Value& stop,
                                       const Value& step_v) {
  auto bound = [](const Value& v, const char* what) -> std::optional<std::int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_int() && !v.is_bool()) fail("slice {} must be an integer or None", what);
    return v.to_int();
  };
  const std::int64_t step = bound(step_v, "step").value_or(1);
  if (step == 0) fail("slice step cannot be zero");
  auto clamp = [&](std::optional<std::int64_t> b, std::int64_t def) {
    if (!b) return def;
    std::int64_t i = *b;
    if (i < 0) {
      i += n;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= n) {
      i = step < 0 ? n - 1 : n;
    }
    return i;
  };
  const std::int64_t lo = clamp(bound(start, "start"), step < 0 ? n - 1 : 0);
  const std::int64_t hi = clamp(bound(stop, "stop"), step < 0 ? -1 : n);
  std::vector<std::size_t> out;
  for (std::int64_t i = lo; step > 0 ? i < hi : i > hi; i += step) {
    out.push_back(static_cast<std::size_t>(i));
  }
  return out;
}

}  // namespace

void Renderer::eval_args(const CallArgsExpr& a, Scope& scope, CallArgs& out) {
  out.positional.reserve(a.positional.size());
  for (const auto& e : a.positional) out.positional.push_back(eval(*e, scope));
  for (const auto& [name, e] : a.named) out.named.emplace_back(name, eval(*e, scope));
}

Value Renderer::eval(const Expr& e, Scope& scope) {
  line_ = e.line;
  switch (e.kind) {
    case ExprKind::Literal:
      return static_cast<const LiteralExpr&>(e).value;
    case ExprKind::Name: {
      const auto& name = static_cast<const NameExpr&>(e).name;
      if (const Value* v = scope.find(name)) return *v;
      if (const Value* g = find_global(name)) return *g;
      return Value::undefined(fmt::format("'{}' is undefined", name));
    }
    case ExprKind::Attr: {
      const auto& a = static_cast<const AttrExpr&>(e);
      const Value obj = eval(*a.object, scope);
      line_ = e.line;
      return get_attr(obj, a.name);
    }
    case ExprKind::Item: {
      const auto& a = static_cast<const ItemExpr&>(e);
      const Value obj = eval(*a.object, scope);
      const Value key = eval(*a.index, scope);
      line_ = e.line;
      return get_item(obj, key);
    }
    case ExprKind::Slice:
      return eval_slice(static_cast<const SliceExpr&>(e), scope);
    case ExprKind::Neg:
    case ExprKind::Pos: {
      const Value v = eval(*static_cast<const UnaryExpr&>(e).operand, scope);
      line_ = e.line;
      if (v.is_undefined()) fail_undefined(v);
      if (!v.is_number()) {
        fail("bad operand type for unary {}: '{}'", e.kind == ExprKind::Neg ? '-' : '+',
             v.type_name());
      }
      if (e.kind == ExprKind::Pos) return v.is_bool() ? Value(v.to_int()) : v;
      if (v.is_float()) return Value(-v.as_float());
      if (v.to_int() == INT64_MIN) fail("integer overflow");
      return Value(-v.to_int());
    }
    case ExprKind::Not:
      return Value(!eval(*static_cast<const UnaryExpr&>(e).operand, scope).truthy());
    case ExprKind::And: {
      const auto& b = static_cast<const BinaryExpr&>(e);
      Value left = eval(*b.left, scope);
      if (!left.truthy()) return left;
      return eval(*b.right, scope);
    }
    case ExprKind::Or: {
      const auto& b = static_cast<const BinaryExpr&>(e);
      Value left = eval(*b.left, scope);
      if (left.truthy()) return left;
      return eval(*b.right, scope);
    }
    case ExprKind::Binary:
      return eval_binary(static_cast<const BinaryExpr&>(e), scope);
    case ExprKind::Compare:
      return eval_compare(static_cast<const CompareExpr&>(e), scope);
    case ExprKind::Test: {
      const auto& t = static_cast<const TestExpr&>(e);
      const Value v = eval(*t.operand, scope);
      CallArgs args;
      eval_args(t.args, scope, args);
      line_ = e.line;
      return Value(test(t.name, v, args) != t.negated);
    }
    case ExprKind::Filter: {
      const auto& f = static_cast<const FilterExpr&>(e);
      const Value v = eval(*f.operand, scope);
      CallArgs args;
      eval_args(f.args, scope, args);
      line_ = e.line;
      return filter(f.name, v, args);
    }
    case ExprKind::Call:
      return eval_call(static_cast<const CallExpr&>(e), scope);
    case ExprKind::Cond: {
      const auto& c = static_cast<const CondExpr&>(e);
      if (eval(*c.cond, scope).truthy()) return eval(*c.then, scope);
      if (c.otherwise) return eval(*c.otherwise, scope);
      return Value::undefined("the inline if's condition was false and it has no else");
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      const auto& l = static_cast<const ListExpr&>(e);
      std::vector<Value> items;
      items.reserve(l.items.size());
      for (const auto& i : l.items) items.push_back(eval(*i, scope));
      return Value::array(std::move(items), e.kind == ExprKind::Tuple);
    }
    case ExprKind::Dict: {
      const auto& d = static_cast<const DictExpr&>(e);
      auto o = std::make_shared<Object>();
      for (const auto& [k, v] : d.items) {
        const Value key = eval(*k, scope);
        if (!key.is_string()) {
          line_ = e.line;
          fail("dict keys must be strings, not '{}'", key.type_name());
        }
        o->set(key.as_string(), eval(*v, scope));
      }
      return Value(std::move(o));
    }
  }
  fail("unknown expression");
}

Value Renderer::eval_binary(const BinaryExpr& e, Scope& scope) {
  const Value a = eval(*e.left, scope);
  const Value b = eval(*e.right, scope);
  line_ = e.line;
  return binary_op(e.op, a, b, *this);
}

Value Renderer::eval_compare(const CompareExpr& e, Scope& scope) {
  Value left = eval(*e.first, scope);
  for (const auto& [op, expr] : e.rest) {
    Value right = eval(*expr, scope);
    line_ = e.line;
    bool ok = false;
    if (op == "==") {
      ok = equal(left, right);
    } else if (op == "!=") {
      ok = !equal(left, right);
    } else if (op == "<") {
      ok = less_than(left, right);
    } else if (op == ">") {
      ok = less_than(right, left);
    } else if (op == "<=") {
      ok = !less_than(right, left);
    } else if (op == ">=") {
      ok = !less_than(left, right);
    } else if (op == "in") {
      ok = contains(right, left);
    } else {
      ok = !contains(right, left);
    }
    if (!ok) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

Value Renderer::eval_slice(const SliceExpr& e, Scope& scope) {
  const Value obj = eval(*e.object, scope);
  const Value start = e.start ? eval(*e.start, scope) : Value(nullptr);
  const Value stop = e.stop ? eval(*e.stop, scope) : Value(nullptr);
  const Value step = e.step ? eval(*e.step, scope) : Value(nullptr);
  line_ = e.line;
  if (obj.is_undefined()) fail_undefined(obj);
  if (obj.is_array()) {
    const auto& items = obj.as_array().items;
    std::vector<Value> out;
    for (const auto i : slice_indices(static_cast<std::int64_t>(items.size()), start, stop, step)) {
      out.push_back(items[i]);
    }
    return Value::array(std::move(out), obj.as_array().tuple);
  }
  if (obj.is_string()) {
    const auto& s = obj.as_string();
    std::string out;
    if (utf8::is_ascii(s)) {
      for (const auto i : slice_indices(static_cast<std::int64_t>(s.size()), start, stop, step)) {
        out += s[i];
      }
    } else {
      const auto off = utf8::offsets(s);
      const auto n = static_cast<std::int64_t>(off.size()) - 1;
      for (const auto i : slice_indices(n, start, stop, step)) {
        out.append(s, off[i], off[i + 1] - off[i]);
      }
    }
    return Value(std::move(out));
  }
  return Value::undefined(fmt::format("'{}' object cannot be sliced", obj.type_name()));
}

Value Renderer::eval_call(const CallExpr& e, Scope& scope) {
  CallArgs args;
  if (e.callee->kind == ExprKind::Attr) {
    // obj.method(...): str and dict methods without building a bound method first.
    const auto& a = static_cast<const AttrExpr&>(*e.callee);
    const Value obj = eval(*a.object, scope);
    line_ = e.line;
    const bool method = !obj.is_undefined() && has_method(obj, a.name) &&
                        !(obj.is_object() && obj.as_object().is_namespace);
    if (method) {
      eval_args(e.args, scope, args);
      line_ = e.line;
      return call_method(*this, obj, a.name, args);
    }
    const Value callee = get_attr(obj, a.name);
    eval_args(e.args, scope, args);
    line_ = e.line;
    return call(callee, args);
  }
  const Value callee = eval(*e.callee, scope);
  eval_args(e.args, scope, args);
  line_ = e.line;
  return call(callee, args);
}

Value Renderer::call(const Value& callee, CallArgs& args) {
  if (callee.is_function()) return callee.as_function().call(*this, args);
  if (callee.is_undefined()) fail_undefined(callee);
  fail("'{}' object is not callable", callee.type_name());
}

Value Renderer::filter(std::string_view name, const Value& input, CallArgs& args) {
  const FilterFn f = find_filter(name);
  if (!f) fail("no filter named '{}'", name);
  return f(*this, input, args);
}

bool Renderer::test(std::string_view name, const Value& input, CallArgs& args) {
  const TestFn t = find_test(name);
  if (!t) fail("no test named '{}'", name);
  return t(*this, input, args);
}

}  // namespace ep::jinja
