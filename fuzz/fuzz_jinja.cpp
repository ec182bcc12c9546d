// libFuzzer target: parses and renders arbitrary bytes as a chat template over a fixed small
// chat, under tight limits. Every outcome must be a render or an ep::Error, never a crash, a
// hang or an out-of-bounds read.
#include "core/error.h"
#include "jinja/template.h"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

const ep::jinja::Value& context() {
  static const ep::jinja::Value v = ep::jinja::Value::from_json(nlohmann::ordered_json::parse(R"({
    "messages": [{"role": "system", "content": "Be brief."},
                 {"role": "user", "content": "Gr\u00fc\u00df dich"},
                 {"role": "assistant", "content": null, "tool_calls": [{"id": "call12345",
                   "type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]},
                 {"role": "tool", "content": "42"}],
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object", "properties": {"x": {"type": "integer"}}}}}],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>"})"));
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ep::jinja::Options options = ep::jinja::Options::hugging_face();
  options.max_output_bytes = 1 << 16;
  options.max_loop_iterations = 10000;
  options.max_call_depth = 20;
  options.now = 0;
  try {
    const auto t = ep::jinja::Template::parse(
        std::string_view(reinterpret_cast<const char*>(data), size), options);
    (void)t.render(context());
  } catch (const ep::Error&) {
  }
  return 0;
}
