#include "jinja/template.h"

#include "core/error.h"
#include "jinja/parser.h"
#include "jinja/renderer.h"

namespace ep::jinja {

struct Template::Parsed {
  Body body;
};

Template Template::parse(std::string_view source, const Options& options) {
  Template t;
  auto parsed = std::make_shared<Parsed>();
  try {
    Parser parser(tokenize(source, LexOptions{options.trim_blocks, options.lstrip_blocks}));
    parsed->body = parser.parse_template();
  } catch (const Error& e) {
    fail("template: {}", e.what());
  }
  t.parsed_ = std::move(parsed);
  t.options_ = std::make_shared<const Options>(options);
  return t;
}

std::string Template::render(const Value& context) const {
  Renderer r(*options_, context);
  try {
    return r.run(parsed_->body);
  } catch (const Error& e) {
    fail("template: line {}: {}", r.line(), e.what());
  } catch (const std::bad_alloc&) {
    fail("template: line {}: out of memory", r.line());
  }
}

}  // namespace ep::jinja
