// Statements: Renderer::exec, loops, assignments, macros.
#include "core/error.h"
#include "jinja/renderer.h"

namespace ep::jinja {

namespace {

// A macro as a value: calling it renders its body with the arguments bound.
class Macro : public Function {
 public:
  Macro(const MacroStmt& m, std::shared_ptr<const Scope> closure, Value caller)
      : m_(m), closure_(std::move(closure)), caller_(std::move(caller)) {}
  Value call(Renderer& r, CallArgs& args) const override {
    return r.call_macro(m_, closure_ ? closure_.get() : &r.root(), args, caller_);
  }
  std::string name() const override { return m_.name; }

 private:
  const MacroStmt& m_;
  std::shared_ptr<const Scope> closure_;  // null: the template's top level, as it is at the call
  Value caller_;
};

// loop.cycle(a, b, ...): the argument at loop.index0 modulo their number.
class Cycle : public Function {
 public:
  explicit Cycle(std::weak_ptr<Object> loop) : loop_(std::move(loop)) {}
  Value call(Renderer&, CallArgs& args) const override {
    if (args.positional.empty()) fail("no items for cycling given");
    const auto loop = loop_.lock();
    const Value* i = loop ? loop->find("index0") : nullptr;
    const auto n = static_cast<std::int64_t>(args.positional.size());
    return args.positional[static_cast<std::size_t>((i ? i->to_int() : 0) % n)];
  }
  std::string name() const override { return "loop.cycle"; }

 private:
  std::weak_ptr<Object> loop_;
};

// What a macro defined in a nested scope sees: a copy of the variables visible where it is
// defined (a live view of the top level otherwise).
std::shared_ptr<const Scope> snapshot(const Scope& scope, const Scope& root) {
  if (&scope == &root) return nullptr;
  auto s = std::make_shared<Scope>();
  for (const Scope* p = &scope; p && p != &root; p = p->parent) {
    for (const auto& [k, v] : p->vars) {
      if (!s->find(k)) s->vars.emplace_back(k, v);
    }
  }
  s->parent = &root;
  return s;
}

}  // namespace

const Value* Scope::find(std::string_view name) const {
  for (const Scope* s = this; s; s = s->parent) {
    for (const auto& [k, v] : s->vars) {
      if (k == name) return &v;
    }
  }
  return nullptr;
}

void Scope::set(std::string_view name, Value value) {
  for (auto& [k, v] : vars) {
    if (k == name) {
      v = std::move(value);
      return;
    }
  }
  vars.emplace_back(std::string(name), std::move(value));
}

Renderer::Renderer(const Options& options, const Value& context) : options_(options) {
  if (context.is_object()) {
    root_.vars = context.as_object().entries();
  } else if (!context.is_none() && !context.is_undefined()) {
    fail("the context must be an object, not '{}'", context.type_name());
  }
}

std::string Renderer::run(const Body& body) {
  std::string out;
  out_ = &out;
  exec(body, root_);
  return out;
}

void Renderer::emit(std::string_view text) {
  out_->append(text);
  check_length(out_->size());
}

void Renderer::check_length(std::size_t bytes) const {
  if (bytes > options_.max_output_bytes) {
    fail("output longer than the limit of {} bytes", options_.max_output_bytes);
  }
}

void Renderer::count_iterations(std::size_t n) {
  iterations_ += static_cast<std::int64_t>(n);
  if (iterations_ > options_.max_loop_iterations) {
    fail("more than {} loop iterations", options_.max_loop_iterations);
  }
}

std::string Renderer::capture(const Body& body, Scope& scope) {
  std::string buffer;
  std::string* saved = out_;
  out_ = &buffer;
  try {
    exec(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buffer;
}

Value Renderer::apply_filters(const std::vector<std::unique_ptr<FilterExpr>>& filters, Value v,
                              Scope& scope) {
  for (const auto& f : filters) {
    CallArgs args;
    eval_args(f->args, scope, args);
    line_ = f->line;
    v = filter(f->name, v, args);
  }
  return v;
}

Flow Renderer::exec(const Body& body, Scope& scope) {
  for (const auto& stmt : body) {
    line_ = stmt->line;
    switch (stmt->kind) {
      case StmtKind::Text:
        emit(static_cast<const TextStmt&>(*stmt).text);
        break;
      case StmtKind::Print: {
        const Value v = eval(*static_cast<const PrintStmt&>(*stmt).expr, scope);
        if (v.is_string()) {
          emit(v.as_string());
        } else {
          emit(v.str());
        }
        break;
      }
      case StmtKind::If: {
        const auto& s = static_cast<const IfStmt&>(*stmt);
        const Body* chosen = &s.otherwise;
        for (const auto& [cond, body_] : s.branches) {
          if (eval(*cond, scope).truthy()) {
            chosen = &body_;
            break;
          }
        }
        const Flow f = exec(*chosen, scope);
        if (f != Flow::Normal) return f;
        break;
      }
      case StmtKind::For: {
        const Flow f = exec_for(static_cast<const ForStmt&>(*stmt), scope);
        if (f != Flow::Normal) return f;
        break;
      }
      case StmtKind::Set:
        exec_set(static_cast<const SetStmt&>(*stmt), scope);
        break;
      case StmtKind::SetBlock: {
        const auto& s = static_cast<const SetBlockStmt&>(*stmt);
        Value v = apply_filters(s.filters, Value(capture(s.body, scope)), scope);
        if (s.attr.empty()) {
          scope.set(s.target, std::move(v));
        } else {
          const Value* ns = scope.find(s.target);
          if (!ns || !ns->is_object() || !ns->as_object().is_namespace) {
            fail("cannot assign attribute on non-namespace object");
          }
          ns->as_object().set(s.attr, std::move(v));
        }
        break;
      }
      case StmtKind::Macro: {
        const auto& m = static_cast<const MacroStmt&>(*stmt);
        scope.set(m.name, Value(std::shared_ptr<const Function>(
                              std::make_shared<Macro>(m, snapshot(scope, root_), Value()))));
        break;
      }
      case StmtKind::CallBlock: {
        const auto& s = static_cast<const CallBlockStmt&>(*stmt);
        Value caller(std::shared_ptr<const Function>(
            std::make_shared<Macro>(*s.caller, snapshot(scope, root_), Value())));
        const Value callee = eval(*s.call->callee, scope);
        CallArgs args;
        eval_args(s.call->args, scope, args);
        args.named.emplace_back("caller", std::move(caller));
        line_ = s.line;
        emit(call(callee, args).str());
        break;
      }
      case StmtKind::FilterBlock: {
        const auto& s = static_cast<const FilterBlockStmt&>(*stmt);
        emit(apply_filters(s.filters, Value(capture(s.body, scope)), scope).str());
        break;
      }
      case StmtKind::Scope: {
        const auto& s = static_cast<const ScopeStmt&>(*stmt);
        Scope inner;
        inner.parent = &scope;
        for (const auto& [name, e] : s.assignments) inner.set(name, eval(*e, scope));
        const Flow f = exec(s.body, inner);
        if (f != Flow::Normal) return f;
        break;
      }
      case StmtKind::Break:
        return Flow::Break;
      case StmtKind::Continue:
        return Flow::Continue;
    }
  }
  return Flow::Normal;
}

namespace {

void bind_targets(Scope& scope, const std::vector<std::string>& targets, bool unpack,
                  const Value& v) {
  if (!unpack) {
    scope.set(targets[0], v);
    return;
  }
  const std::vector<Value> items = iterate(v);
  if (items.size() != targets.size()) {
    fail("{} values to unpack (expected {}, got {})",
         items.size() < targets.size() ? "not enough" : "too many", targets.size(), items.size());
  }
  for (std::size_t i = 0; i < targets.size(); ++i) scope.set(targets[i], items[i]);
}

}  // namespace

Flow Renderer::exec_for(const ForStmt& s, Scope& scope) {
  const Value iterable = eval(*s.iterable, scope);
  line_ = s.line;
  std::vector<Value> items = iterate(iterable);
  count_iterations(items.size());
  if (s.filter) {
    std::vector<Value> kept;
    for (auto& item : items) {
      Scope probe;
      probe.parent = &scope;
      bind_targets(probe, s.targets, s.unpack, item);
      if (eval(*s.filter, probe).truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    return exec(s.otherwise, scope);
  }
  const auto n = static_cast<std::int64_t>(items.size());
  auto loop = std::make_shared<Object>();
  loop->set("length", Value(n));
  loop->set("depth", Value(1));
  loop->set("depth0", Value(0));
  loop->set("cycle", Value(std::shared_ptr<const Function>(std::make_shared<Cycle>(loop))));
  const Value loop_value(loop);
  for (std::int64_t i = 0; i < n; ++i) {
    const auto at = static_cast<std::size_t>(i);
    loop->set("index", Value(i + 1));
    loop->set("index0", Value(i));
    loop->set("revindex", Value(n - i));
    loop->set("revindex0", Value(n - i - 1));
    loop->set("first", Value(i == 0));
    loop->set("last", Value(i == n - 1));
    loop->set("previtem", i > 0 ? items[at - 1] : Value::undefined("there is no previous item"));
    loop->set("nextitem", i + 1 < n ? items[at + 1] : Value::undefined("there is no next item"));
    Scope inner;
    inner.parent = &scope;
    inner.vars.reserve(s.targets.size() + 1);
    inner.vars.emplace_back("loop", loop_value);
    bind_targets(inner, s.targets, s.unpack, items[at]);
    if (exec(s.body, inner) == Flow::Break) break;
  }
  return Flow::Normal;
}

void Renderer::exec_set(const SetStmt& s, Scope& scope) {
  Value v = eval(*s.value, scope);
  line_ = s.line;
  if (s.attr) {
    const Value* ns = scope.find(s.targets[0]);
    if (!ns || !ns->is_object() || !ns->as_object().is_namespace) {
      fail("cannot assign attribute on non-namespace object");
    }
    ns->as_object().set(s.targets[1], std::move(v));
    return;
  }
  bind_targets(scope, s.targets, s.unpack, v);
}

Value Renderer::call_macro(const MacroStmt& m, const Scope* closure, CallArgs& args,
                           const Value& caller) {
  if (call_depth_ >= options_.max_call_depth) {
    fail("macro calls nested deeper than {} (recursion?)", options_.max_call_depth);
  }
  if (args.positional.size() > m.params.size()) {
    fail("macro '{}' takes not more than {} argument(s)", m.name, m.params.size());
  }
  Scope scope;
  scope.parent = closure;
  std::vector<bool> bound(m.params.size(), false);
  for (std::size_t i = 0; i < args.positional.size(); ++i) {
    scope.set(m.params[i], std::move(args.positional[i]));
    bound[i] = true;
  }
  for (auto& [name, v] : args.named) {
    std::size_t i = 0;
    while (i < m.params.size() && m.params[i] != name) ++i;
    if (i == m.params.size()) {
      if (name == "caller") {
        scope.set("caller", std::move(v));
        continue;
      }
      fail("macro '{}' got an unexpected keyword argument '{}'", m.name, name);
    }
    if (bound[i]) fail("macro '{}' got multiple values for argument '{}'", m.name, name);
    scope.set(m.params[i], std::move(v));
    bound[i] = true;
  }
  for (std::size_t i = 0; i < m.params.size(); ++i) {
    if (bound[i]) continue;
    if (m.defaults[i]) {
      scope.set(m.params[i], eval(*m.defaults[i], scope));
    } else {
      scope.set(m.params[i],
                Value::undefined(fmt::format("parameter '{}' was not provided", m.params[i])));
    }
  }
  if (!caller.is_undefined()) scope.set("caller", caller);
  ++call_depth_;
  const int saved_line = line_;
  std::string out;
  try {
    out = capture(m.body, scope);
  } catch (...) {
    --call_depth_;
    throw;
  }
  --call_depth_;
  line_ = saved_line;
  return Value(std::move(out));
}

}  // namespace ep::jinja
