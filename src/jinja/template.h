// A Jinja2 template interpreter for chat templates (`tokenizer.chat_template` of GGUF and
// Hugging Face models): parse once, render many times with a context of JSON-like values.
//
//   auto t = jinja::Template::parse(source, jinja::Options::hugging_face());
//   std::string prompt = t.render(jinja::Value::from_json(context));
//
// The semantics are Python jinja2's (3.x) with the environment Hugging Face uses: printed values
// as Python prints them, Python truthiness, undefined names empty and falsy, `tojson` without
// HTML escaping. Every failure, at parse or at render, is one ep::Error whose message starts
// with "template" and names the line.
#pragma once

#include "jinja/value.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ep::jinja {

struct Options {
  bool trim_blocks = false;    // drop the first newline after a block tag (%})
  bool lstrip_blocks = false;  // strip spaces and tabs before a block tag at a line's start
  // Bounds of one render, each failing with a clear error when passed.
  std::size_t max_output_bytes = std::size_t{64} << 20;  // also any one string value
  std::int64_t max_loop_iterations = 1'000'000;          // over all loops of the render
  int max_call_depth = 100;                              // nested macro calls
  // strftime_now(fmt) formats this time (seconds since the epoch, as UTC) when set; otherwise
  // the current local time.
  std::optional<std::int64_t> now;

  // How Hugging Face transformers renders chat templates.
  static Options hugging_face() {
    Options o;
    o.trim_blocks = true;
    o.lstrip_blocks = true;
    return o;
  }
};

class Template {
 public:
  // Throws ep::Error "template: line L, column C: ..." when the source does not parse.
  static Template parse(std::string_view source, const Options& options = {});

  // Renders with `context` (an object: its keys are the template's variables). Throws ep::Error
  // "template: line L: ..." on a render error (raise_exception(msg) gives "template: line L:
  // raise_exception: msg").
  std::string render(const Value& context) const;
  std::string render(const nlohmann::ordered_json& context) const {
    return render(Value::from_json(context));
  }

  const Options& options() const { return *options_; }

 private:
  struct Parsed;
  std::shared_ptr<const Parsed> parsed_;
  std::shared_ptr<const Options> options_;
};

}  // namespace ep::jinja
