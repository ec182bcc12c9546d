// tojson: Python's json.dumps as Hugging Face calls it (no HTML escaping, non-ASCII kept unless
// ensure_ascii, keys in insertion order unless sort_keys).
#include "core/error.h"
#include "jinja/renderer.h"
#include "jinja/utf8.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ep::jinja {

namespace {

void write_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (std::size_t i = 0, len = 0; i < s.size(); i += len) {
    const auto c = static_cast<unsigned char>(s[i]);
    len = 1;
    char buf[16];
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (c < 0x20 || (ensure_ascii && c == 0x7F)) {
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (c < 0x80 || !ensure_ascii) {
      out += static_cast<char>(c);
    } else {
      std::uint32_t cp = utf8::decode(s, i, &len);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (cp >> 10),
                      0xDC00 + (cp & 0x3FF));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      }
      out += buf;
    }
  }
  out += '"';
}

void newline(std::string& out, const JsonStyle& style, int level) {
  out += '\n';
  for (int i = 0; i < level; ++i) out += style.indent;
}

void write(std::string& out, const Value& v, const JsonStyle& style, int level) {
  if (level > 256) fail("tojson: value nested deeper than 256 levels (circular?)");
  switch (v.kind()) {
    case Value::Kind::None:
      out += "null";
      return;
    case Value::Kind::Bool:
      out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::Int:
      out += std::to_string(v.as_int());
      return;
    case Value::Kind::Float: {
      const double d = v.as_float();
      if (std::isnan(d)) {
        out += "NaN";
      } else if (std::isinf(d)) {
        out += d < 0 ? "-Infinity" : "Infinity";
      } else {
        out += format_float(d);
      }
      return;
    }
    case Value::Kind::String:
      write_string(out, v.as_string(), style.ensure_ascii);
      return;
    case Value::Kind::Array: {
      const auto& items = v.as_array().items;
      if (items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += style.item_separator;
        if (style.pretty) newline(out, style, level + 1);
        write(out, items[i], style, level + 1);
      }
      if (style.pretty) newline(out, style, level);
      out += ']';
      return;
    }
    case Value::Kind::Object: {
      const auto& o = v.as_object();
      if (o.is_namespace) fail("Object of type Namespace is not JSON serializable");
      if (o.size() == 0) {
        out += "{}";
        return;
      }
      std::vector<const std::pair<std::string, Value>*> entries;
      for (const auto& e : o.entries()) entries.push_back(&e);
      if (style.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return a->first < b->first; });
      }
      out += '{';
      bool first = true;
      for (const auto* e : entries) {
        if (!first) out += style.item_separator;
        first = false;
        if (style.pretty) newline(out, style, level + 1);
        write_string(out, e->first, style.ensure_ascii);
        out += style.key_separator;
        write(out, e->second, style, level + 1);
      }
      if (style.pretty) newline(out, style, level);
      out += '}';
      return;
    }
    case Value::Kind::Undefined:
      fail("Object of type Undefined is not JSON serializable");
    case Value::Kind::Function:
      fail("Object of type function is not JSON serializable");
  }
}

}  // namespace

std::string to_json(const Value& v, const JsonStyle& style) {
  std::string out;
  write(out, v, style, 0);
  return out;
}

}  // namespace ep::jinja
