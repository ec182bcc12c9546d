// Shared by the jinja tests: render a template string over a JSON context.
#pragma once

#include "jinja/template.h"

#include <nlohmann/json.hpp>

#include <string>

namespace ep::test {

inline std::string jinja_render(const std::string& source, const std::string& context_json = "{}",
                                jinja::Options options = jinja::Options::hugging_face()) {
  return jinja::Template::parse(source, options)
      .render(nlohmann::ordered_json::parse(context_json));
}

// The context of the unit tests.
inline const char* kJinjaContext = R"({"xs": [1, 2, 3], "d": {"a": 1, "b": 2}, "s": "Hello",
  "msgs": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
  "tools": [{"name": "f", "description": "g\u00e9", "parameters": {"type": "object"}}]})";

}  // namespace ep::test
