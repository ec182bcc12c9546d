// The statement half of the parser: template text, {{ }} and the {% %} tags.
#include "core/error.h"
#include "jinja/parser.h"

#include <algorithm>

namespace ep::jinja {

Body Parser::parse_template() {
  std::string found;
  return parse_body({}, &found);
}

// Statements up to a `{% name %}` with name in `ends` (left unconsumed, name in *found), or to
// the end of the template when `ends` is empty.
Body Parser::parse_body(std::initializer_list<std::string_view> ends, std::string* found) {
  DepthGuard guard(*this);
  Body body;
  while (true) {
    const Token& t = cur();
    switch (t.type) {
      case TokenType::Text:
        body.push_back(std::make_unique<TextStmt>(t.text, t.line));
        advance();
        break;
      case TokenType::VarBegin: {
        const int line = advance().line;
        ExprPtr e = parse_tuple(true, false);
        if (cur().type != TokenType::VarEnd) unexpected("end of print statement");
        advance();
        body.push_back(std::make_unique<PrintStmt>(std::move(e), line));
        break;
      }
      case TokenType::BlockBegin: {
        const Token& name = peek();
        if (name.type == TokenType::Name &&
            std::find(ends.begin(), ends.end(), name.text) != ends.end()) {
          *found = name.text;
          return body;
        }
        body.push_back(parse_statement());
        break;
      }
      case TokenType::End:
        if (ends.size() != 0) {
          std::string list;
          for (const auto e : ends) list += (list.empty() ? "'" : " or '") + std::string(e) + "'";
          error(t, "unexpected end of template, expected " + list);
        }
        return body;
      default:
        unexpected("template text or a tag");
    }
  }
}

// Consumes `{% name %}` (after parse_body stopped at it).
void Parser::end_tag(std::string_view name) {
  advance();  // '{%'
  if (!accept_name(name)) unexpected(fmt::format("'{}'", name));
  expect_block_end();
}

StmtPtr Parser::parse_statement() {
  advance();  // '{%'
  if (cur().type != TokenType::Name) unexpected("a tag name");
  const Token& t = advance();
  const int line = t.line;
  const std::string& tag = t.text;
  if (tag == "if") return parse_if(line);
  if (tag == "for") return parse_for(line);
  if (tag == "set") return parse_set(line);
  if (tag == "macro") return parse_macro(line);
  if (tag == "call") return parse_call_block(line);
  if (tag == "filter") return parse_filter_block(line);
  if (tag == "with") return parse_scope(line, true);
  if (tag == "generation") return parse_scope(line, false);
  if (tag == "break" || tag == "continue") {
    if (loop_depth_ == 0) error(t, fmt::format("'{}' outside of a loop", tag));
    expect_block_end();
    return std::make_unique<Stmt>(tag == "break" ? StmtKind::Break : StmtKind::Continue, line);
  }
  static constexpr std::string_view kKnown[] = {"extends", "include",    "import", "from",
                                                "block",   "autoescape", "do",     "print"};
  if (std::find(std::begin(kKnown), std::end(kKnown), tag) != std::end(kKnown)) {
    error(t, fmt::format("the '{}' tag is not supported", tag));
  }
  error(t, fmt::format("unknown tag '{}'", tag));
}

StmtPtr Parser::parse_if(int line) {
  auto s = std::make_unique<IfStmt>(line);
  ExprPtr cond = parse_tuple(true, false);
  while (true) {
    expect_block_end();
    std::string found;
    Body body = parse_body({"elif", "else", "endif"}, &found);
    s->branches.emplace_back(std::move(cond), std::move(body));
    advance();  // '{%'
    advance();  // the name
    if (found == "elif") {
      cond = parse_tuple(true, false);
      continue;
    }
    if (found == "else") {
      expect_block_end();
      s->otherwise = parse_body({"endif"}, &found);
      end_tag("endif");
    } else {
      expect_block_end();
    }
    return s;
  }
}

StmtPtr Parser::parse_for(int line) {
  auto s = std::make_unique<ForStmt>(line);
  const bool parens = accept_op("(");
  do {
    s->targets.push_back(expect_name());
  } while (accept_op(",") && !at_name("in") && !at_op(")"));
  if (parens) expect_op(")");
  s->unpack = parens || s->targets.size() > 1;
  if (!accept_name("in")) unexpected("'in'");
  s->iterable = parse_tuple(false, false, {"recursive", "if"});
  if (accept_name("if")) s->filter = parse_expression();
  if (accept_name("recursive")) error(cur(), "recursive loops are not supported");
  expect_block_end();
  std::string found;
  ++loop_depth_;
  s->body = parse_body({"else", "endfor"}, &found);
  --loop_depth_;
  if (found == "else") {
    end_tag("else");
    s->otherwise = parse_body({"endfor"}, &found);
  }
  end_tag("endfor");
  return s;
}

StmtPtr Parser::parse_set(int line) {
  std::string first = expect_name();
  std::string attr;
  if (accept_op(".")) attr = expect_name();
  if (at_op("=") || at_op(",")) {
    auto s = std::make_unique<SetStmt>(line);
    s->targets.push_back(std::move(first));
    if (!attr.empty()) {
      s->attr = true;
      s->targets.push_back(std::move(attr));
    } else {
      while (accept_op(",")) s->targets.push_back(expect_name());
      s->unpack = s->targets.size() > 1;
    }
    expect_op("=");
    s->value = parse_tuple(true, false);
    expect_block_end();
    return s;
  }
  auto s = std::make_unique<SetBlockStmt>(line);
  s->target = std::move(first);
  s->attr = std::move(attr);
  if (at_op("|")) s->filters = parse_filter_chain(true);
  expect_block_end();
  std::string found;
  s->body = parse_body({"endset"}, &found);
  end_tag("endset");
  return s;
}

std::vector<std::unique_ptr<FilterExpr>> Parser::parse_filter_chain(bool leading_pipe) {
  std::vector<std::unique_ptr<FilterExpr>> filters;
  bool first = !leading_pipe;
  while (first ? cur().type == TokenType::Name : at_op("|")) {
    auto f = std::make_unique<FilterExpr>(cur().line);
    if (!first) advance();  // '|'
    first = false;
    f->name = parse_dotted_name();
    if (at_op("(")) f->args = parse_call_args();
    filters.push_back(std::move(f));
  }
  return filters;
}

void Parser::parse_params(MacroStmt& m) {
  expect_op("(");
  while (!at_op(")")) {
    if (!m.params.empty()) {
      expect_op(",");
      if (at_op(")")) break;
    }
    m.params.push_back(expect_name());
    if (accept_op("=")) {
      m.defaults.push_back(parse_expression());
    } else {
      if (!m.defaults.empty() && m.defaults.back()) {
        error(cur(), "a parameter without a default after one with a default");
      }
      m.defaults.push_back(nullptr);
    }
  }
  expect_op(")");
}

StmtPtr Parser::parse_macro(int line) {
  auto m = std::make_unique<MacroStmt>(line);
  m->name = expect_name();
  parse_params(*m);
  expect_block_end();
  const int saved_loops = loop_depth_;
  loop_depth_ = 0;
  std::string found;
  m->body = parse_body({"endmacro"}, &found);
  loop_depth_ = saved_loops;
  end_tag("endmacro");
  return m;
}

StmtPtr Parser::parse_call_block(int line) {
  auto s = std::make_unique<CallBlockStmt>(line);
  s->caller = std::make_unique<MacroStmt>(line);
  s->caller->name = "caller";
  if (at_op("(")) parse_params(*s->caller);
  ExprPtr call = parse_expression();
  if (call->kind != ExprKind::Call) error(cur(), "expected a macro call after 'call'");
  s->call.reset(static_cast<CallExpr*>(call.release()));
  expect_block_end();
  std::string found;
  s->caller->body = parse_body({"endcall"}, &found);
  end_tag("endcall");
  return s;
}

StmtPtr Parser::parse_filter_block(int line) {
  auto s = std::make_unique<FilterBlockStmt>(line);
  s->filters = parse_filter_chain(false);
  if (s->filters.empty()) unexpected("a filter name");
  expect_block_end();
  std::string found;
  s->body = parse_body({"endfilter"}, &found);
  end_tag("endfilter");
  return s;
}

StmtPtr Parser::parse_scope(int line, bool with) {
  auto s = std::make_unique<ScopeStmt>(line);
  if (with) {
    while (cur().type == TokenType::Name) {
      std::string name = advance().text;
      expect_op("=");
      s->assignments.emplace_back(std::move(name), parse_expression());
      if (!accept_op(",")) break;
    }
  }
  expect_block_end();
  std::string found;
  const std::string_view end = with ? "endwith" : "endgeneration";
  s->body = parse_body({end}, &found);
  end_tag(end);
  return s;
}

}  // namespace ep::jinja
