// Global functions: range, namespace, dict, raise_exception, strftime_now.
#include "core/error.h"
#include "jinja/renderer.h"

#include <ctime>

namespace ep::jinja {

namespace {

template <typename F>
class Builtin : public Function {
 public:
  Builtin(std::string name, F f) : name_(std::move(name)), f_(f) {}
  Value call(Renderer& r, CallArgs& args) const override { return f_(r, args); }
  std::string name() const override { return name_; }

 private:
  std::string name_;
  F f_;
};

template <typename F>
Value make(std::string name, F f) {
  return Value(std::shared_ptr<const Function>(std::make_shared<Builtin<F>>(std::move(name), f)));
}

Value range(Renderer& r, CallArgs& args) {
  if (!args.named.empty()) fail("range() takes no keyword arguments");
  const auto& p = args.positional;
  if (p.empty() || p.size() > 3) fail("range expected 1 to 3 arguments, got {}", p.size());
  for (const auto& v : p) {
    if (!v.is_int() && !v.is_bool())
      fail("'{}' object cannot be interpreted as an integer", v.type_name());
  }
  std::int64_t start = 0, stop = 0, step = 1;
  if (p.size() == 1) {
    stop = p[0].to_int();
  } else {
    start = p[0].to_int();
    stop = p[1].to_int();
    if (p.size() == 3) step = p[2].to_int();
  }
  if (step == 0) fail("range() arg 3 must not be zero");
  // The number of items, computed without overflow.
  std::uint64_t n = 0;
  if (step > 0 && start < stop) {
    n = (static_cast<std::uint64_t>(stop) - static_cast<std::uint64_t>(start) - 1) /
            static_cast<std::uint64_t>(step) +
        1;
  } else if (step < 0 && start > stop) {
    n = (static_cast<std::uint64_t>(start) - static_cast<std::uint64_t>(stop) - 1) /
            (0 - static_cast<std::uint64_t>(step)) +
        1;
  }
  if (n > static_cast<std::uint64_t>(r.options().max_loop_iterations)) {
    fail("range() of {} items is over the loop limit of {}", n, r.options().max_loop_iterations);
  }
  std::vector<Value> items;
  items.reserve(n);
  std::int64_t v = start;
  for (std::uint64_t i = 0; i < n; ++i, v += (i < n ? step : 0)) items.emplace_back(v);
  return Value::array(std::move(items));
}

Value make_object(CallArgs& args, bool ns, std::string_view what) {
  auto o = std::make_shared<Object>();
  o->is_namespace = ns;
  if (args.positional.size() > 1) fail("{} takes at most one positional argument", what);
  if (!args.positional.empty()) {
    const Value& init = args.positional[0];
    if (!init.is_object()) fail("{}: the positional argument must be a dict", what);
    for (const auto& [k, v] : init.as_object().entries()) o->set(k, v);
  }
  for (auto& [k, v] : args.named) o->set(k, std::move(v));
  return Value(std::move(o));
}

Value strftime_now(Renderer& r, CallArgs& args) {
  ArgReader a("strftime_now()", args, {"format"});
  const std::string format = a.string(0, "");
  if (format.size() > 256) fail("strftime_now(): format longer than 256 bytes");
  std::tm tm{};
  if (r.options().now) {
    const auto t = static_cast<std::time_t>(*r.options().now);
    gmtime_r(&t, &tm);
  } else {
    const std::time_t t = std::time(nullptr);
    localtime_r(&t, &tm);
  }
  if (format.empty()) return Value("");
  char buf[4096];
  const std::size_t n = std::strftime(buf, sizeof buf, format.c_str(), &tm);
  return Value(std::string(buf, n));
}

}  // namespace

const Value* find_global(std::string_view name) {
  static const Value kRange = make("range", range);
  static const Value kNamespace =
      make("namespace", [](Renderer&, CallArgs& a) { return make_object(a, true, "namespace()"); });
  static const Value kDict =
      make("dict", [](Renderer&, CallArgs& a) { return make_object(a, false, "dict()"); });
  static const Value kRaise = make("raise_exception", [](Renderer&, CallArgs& a) -> Value {
    ArgReader r("raise_exception()", a, {"message"});
    const Value* m = r.get(0);
    fail("raise_exception: {}", m ? m->str() : std::string());
  });
  static const Value kStrftime = make("strftime_now", strftime_now);
  if (name == "range") return &kRange;
  if (name == "namespace") return &kNamespace;
  if (name == "dict") return &kDict;
  if (name == "raise_exception") return &kRaise;
  if (name == "strftime_now") return &kStrftime;
  return nullptr;
}

}  // namespace ep::jinja
