#include "jinja/parser.h"

#include "core/error.h"

#include <algorithm>

namespace ep::jinja {

namespace {
constexpr int kMaxNesting = 96;
}

Parser::DepthGuard::DepthGuard(Parser& parser) : p(parser) {
  if (++p.depth_ > kMaxNesting) {
    p.error(p.cur(), fmt::format("template nested deeper than {} levels", kMaxNesting));
  }
}

bool Parser::at_op(std::string_view op) const {
  return cur().type == TokenType::Op && cur().text == op;
}
bool Parser::at_name(std::string_view name) const {
  return cur().type == TokenType::Name && cur().text == name;
}
bool Parser::accept_op(std::string_view op) {
  if (!at_op(op)) return false;
  advance();
  return true;
}
bool Parser::accept_name(std::string_view name) {
  if (!at_name(name)) return false;
  advance();
  return true;
}
void Parser::expect_op(std::string_view op) {
  if (!accept_op(op)) unexpected(fmt::format("'{}'", op));
}
std::string Parser::expect_name() {
  if (cur().type != TokenType::Name) unexpected("a name");
  return advance().text;
}
void Parser::expect_block_end() {
  if (cur().type != TokenType::BlockEnd) unexpected("end of statement block");
  advance();
}

std::string Parser::describe(const Token& t) const {
  switch (t.type) {
    case TokenType::Text:
      return "template text";
    case TokenType::VarBegin:
      return "'{{'";
    case TokenType::VarEnd:
      return "'}}'";
    case TokenType::BlockBegin:
      return "'{%'";
    case TokenType::BlockEnd:
      return "'%}'";
    case TokenType::Name:
    case TokenType::Op:
      return "'" + t.text + "'";
    case TokenType::String:
      return "a string";
    case TokenType::Int:
    case TokenType::Float:
      return "a number";
    case TokenType::End:
      return "end of template";
  }
  return "token";
}

void Parser::error(const Token& at, const std::string& message) const {
  fail("line {}, column {}: {}", at.line, at.column, message);
}

void Parser::unexpected(const std::string& expected) const {
  error(cur(), fmt::format("unexpected {}, expected {}", describe(cur()), expected));
}

ExprPtr Parser::parse_tuple(bool with_condexpr, bool explicit_parens,
                            std::initializer_list<std::string_view> end_names) {
  const int line = cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  auto at_end = [&] {
    const auto& t = cur();
    if (t.type == TokenType::VarEnd || t.type == TokenType::BlockEnd || at_op(")")) return true;
    return t.type == TokenType::Name &&
           std::find(end_names.begin(), end_names.end(), t.text) != end_names.end();
  };
  while (true) {
    if (!items.empty()) {
      if (!accept_op(",")) break;
    }
    if (at_end()) break;
    items.push_back(parse_expression(with_condexpr));
    if (at_op(",")) {
      is_tuple = true;
    } else {
      break;
    }
  }
  if (!is_tuple) {
    if (!items.empty()) return std::move(items[0]);
    if (!explicit_parens) unexpected("an expression");
  }
  auto t = std::make_unique<ListExpr>(ExprKind::Tuple, line);
  t->items = std::move(items);
  return t;
}

ExprPtr Parser::parse_expression(bool with_condexpr) {
  DepthGuard guard(*this);
  ExprPtr node = parse_or();
  if (!with_condexpr) return node;
  while (at_name("if")) {
    auto c = std::make_unique<CondExpr>(cur().line);
    advance();
    c->then = std::move(node);
    c->cond = parse_or();
    if (accept_name("else")) c->otherwise = parse_expression(true);
    node = std::move(c);
  }
  return node;
}

ExprPtr Parser::parse_or() {
  ExprPtr left = parse_and();
  while (at_name("or")) {
    const int line = advance().line;
    left = std::make_unique<BinaryExpr>(ExprKind::Or, "or", std::move(left), parse_and(), line);
  }
  return left;
}

ExprPtr Parser::parse_and() {
  ExprPtr left = parse_not();
  while (at_name("and")) {
    const int line = advance().line;
    left = std::make_unique<BinaryExpr>(ExprKind::And, "and", std::move(left), parse_not(), line);
  }
  return left;
}

ExprPtr Parser::parse_not() {
  if (at_name("not")) {
    DepthGuard guard(*this);
    const int line = advance().line;
    return std::make_unique<UnaryExpr>(ExprKind::Not, parse_not(), line);
  }
  return parse_compare();
}

ExprPtr Parser::parse_compare() {
  const int line = cur().line;
  ExprPtr first = parse_math1();
  std::unique_ptr<CompareExpr> cmp;
  while (true) {
    std::string op;
    const auto& t = cur();
    if (t.type == TokenType::Op && (t.text == "==" || t.text == "!=" || t.text == "<" ||
                                    t.text == "<=" || t.text == ">" || t.text == ">=")) {
      op = t.text;
      advance();
    } else if (at_name("in")) {
      op = "in";
      advance();
    } else if (at_name("not") && peek().type == TokenType::Name && peek().text == "in") {
      op = "notin";
      advance();
      advance();
    } else {
      break;
    }
    if (!cmp) {
      cmp = std::make_unique<CompareExpr>(line);
      cmp->first = std::move(first);
    }
    cmp->rest.emplace_back(std::move(op), parse_math1());
  }
  if (cmp) return cmp;
  return first;
}

ExprPtr Parser::parse_math1() {
  ExprPtr left = parse_concat();
  while (at_op("+") || at_op("-")) {
    const auto& t = advance();
    std::string op = t.text;
    left = std::make_unique<BinaryExpr>(ExprKind::Binary, std::move(op), std::move(left),
                                        parse_concat(), t.line);
  }
  return left;
}

ExprPtr Parser::parse_concat() {
  ExprPtr left = parse_math2();
  while (at_op("~")) {
    const int line = advance().line;
    left =
        std::make_unique<BinaryExpr>(ExprKind::Binary, "~", std::move(left), parse_math2(), line);
  }
  return left;
}

ExprPtr Parser::parse_math2() {
  ExprPtr left = parse_pow();
  while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
    const auto& t = advance();
    std::string op = t.text;
    left = std::make_unique<BinaryExpr>(ExprKind::Binary, std::move(op), std::move(left),
                                        parse_pow(), t.line);
  }
  return left;
}

ExprPtr Parser::parse_pow() {
  ExprPtr left = parse_unary();
  while (at_op("**")) {
    const int line = advance().line;
    left =
        std::make_unique<BinaryExpr>(ExprKind::Binary, "**", std::move(left), parse_unary(), line);
  }
  return left;
}

ExprPtr Parser::parse_unary(bool with_filter) {
  DepthGuard guard(*this);
  ExprPtr node;
  if (at_op("-") || at_op("+")) {
    const auto& t = advance();
    const auto kind = t.text == "-" ? ExprKind::Neg : ExprKind::Pos;
    node = std::make_unique<UnaryExpr>(kind, parse_unary(false), t.line);
  } else {
    node = parse_primary();
  }
  node = parse_postfix(std::move(node));
  if (with_filter) node = parse_filter_expr(std::move(node));
  return node;
}

ExprPtr Parser::parse_primary() {
  const Token& t = cur();
  const int line = t.line;
  switch (t.type) {
    case TokenType::Name: {
      std::string name = advance().text;
      if (name == "true" || name == "True") return std::make_unique<LiteralExpr>(true, line);
      if (name == "false" || name == "False") return std::make_unique<LiteralExpr>(false, line);
      if (name == "none" || name == "None") return std::make_unique<LiteralExpr>(nullptr, line);
      return std::make_unique<NameExpr>(std::move(name), line);
    }
    case TokenType::String: {
      std::string s = advance().text;
      while (cur().type == TokenType::String) s += advance().text;  // "a" "b" is "ab"
      return std::make_unique<LiteralExpr>(std::move(s), line);
    }
    case TokenType::Int:
      return std::make_unique<LiteralExpr>(advance().int_value, line);
    case TokenType::Float:
      return std::make_unique<LiteralExpr>(advance().float_value, line);
    case TokenType::Op:
      if (t.text == "(") {
        advance();
        ExprPtr e = parse_tuple(true, true);
        expect_op(")");
        return e;
      }
      if (t.text == "[") {
        advance();
        auto list = std::make_unique<ListExpr>(ExprKind::List, line);
        while (!at_op("]")) {
          if (!list->items.empty()) {
            expect_op(",");
            if (at_op("]")) break;
          }
          list->items.push_back(parse_expression());
        }
        expect_op("]");
        return list;
      }
      if (t.text == "{") {
        advance();
        auto dict = std::make_unique<DictExpr>(line);
        while (!at_op("}")) {
          if (!dict->items.empty()) {
            expect_op(",");
            if (at_op("}")) break;
          }
          ExprPtr key = parse_expression();
          expect_op(":");
          dict->items.emplace_back(std::move(key), parse_expression());
        }
        expect_op("}");
        return dict;
      }
      break;
    default:
      break;
  }
  unexpected("an expression");
}

ExprPtr Parser::parse_postfix(ExprPtr node) {
  while (true) {
    if (at_op(".") || at_op("[")) {
      node = parse_subscript(std::move(node));
    } else if (at_op("(")) {
      auto call = std::make_unique<CallExpr>(cur().line);
      call->callee = std::move(node);
      call->args = parse_call_args();
      node = std::move(call);
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_filter_expr(ExprPtr node) {
  while (true) {
    if (at_op("|")) {
      node = parse_filter(std::move(node));
    } else if (at_name("is")) {
      node = parse_test(std::move(node));
    } else if (at_op("(")) {
      auto call = std::make_unique<CallExpr>(cur().line);
      call->callee = std::move(node);
      call->args = parse_call_args();
      node = std::move(call);
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parse_subscript(ExprPtr node) {
  const Token& t = advance();
  const int line = t.line;
  if (t.text == ".") {
    if (cur().type == TokenType::Name) {
      return std::make_unique<AttrExpr>(std::move(node), advance().text, line);
    }
    if (cur().type == TokenType::Int) {
      auto index = std::make_unique<LiteralExpr>(advance().int_value, line);
      return std::make_unique<ItemExpr>(std::move(node), std::move(index), line);
    }
    unexpected("an attribute name");
  }
  std::vector<ExprPtr> args;
  while (!at_op("]")) {
    if (!args.empty()) {
      expect_op(",");
      if (at_op("]")) break;
    }
    args.push_back(parse_subscribed());
  }
  expect_op("]");
  if (args.empty()) error(t, "empty subscript");
  ExprPtr index;
  if (args.size() == 1) {
    index = std::move(args[0]);
  } else {
    auto tuple = std::make_unique<ListExpr>(ExprKind::Tuple, line);
    tuple->items = std::move(args);
    index = std::move(tuple);
  }
  if (index->kind == ExprKind::Slice) {
    static_cast<SliceExpr&>(*index).object = std::move(node);
    return index;
  }
  return std::make_unique<ItemExpr>(std::move(node), std::move(index), line);
}

ExprPtr Parser::parse_subscribed() {
  const int line = cur().line;
  ExprPtr start;
  if (!at_op(":")) {
    start = parse_expression();
    if (!at_op(":")) return start;
  }
  advance();  // ':'
  auto slice = std::make_unique<SliceExpr>(line);
  slice->start = std::move(start);
  if (!at_op("]") && !at_op(",") && !at_op(":")) slice->stop = parse_expression();
  if (accept_op(":")) {
    if (!at_op("]") && !at_op(",")) slice->step = parse_expression();
  }
  return slice;
}

std::string Parser::parse_dotted_name() {
  std::string name = expect_name();
  while (accept_op(".")) name += "." + expect_name();
  return name;
}

std::unique_ptr<FilterExpr> Parser::parse_filter(ExprPtr operand) {
  auto f = std::make_unique<FilterExpr>(cur().line);
  advance();  // '|'
  f->operand = std::move(operand);
  f->name = parse_dotted_name();
  if (at_op("(")) f->args = parse_call_args();
  return f;
}

ExprPtr Parser::parse_test(ExprPtr operand) {
  auto test = std::make_unique<TestExpr>(cur().line);
  advance();  // 'is'
  test->operand = std::move(operand);
  test->negated = accept_name("not");
  test->name = parse_dotted_name();
  const auto& t = cur();
  if (at_op("(")) {
    test->args = parse_call_args();
  } else if ((t.type == TokenType::Name || t.type == TokenType::String ||
              t.type == TokenType::Int || t.type == TokenType::Float || at_op("[") || at_op("{")) &&
             !at_name("else") && !at_name("or") && !at_name("and")) {
    if (at_name("is")) error(t, "tests cannot be chained with 'is'");
    // One argument without parentheses: `x is divisibleby 3`, `x is sameas none`.
    test->args.positional.push_back(parse_postfix(parse_primary()));
  }
  return test;
}

CallArgsExpr Parser::parse_call_args() {
  CallArgsExpr args;
  expect_op("(");
  bool first = true;
  while (!at_op(")")) {
    if (!first) {
      expect_op(",");
      if (at_op(")")) break;
    }
    first = false;
    if (at_op("*") || at_op("**")) error(cur(), "*args and **kwargs in calls are not supported");
    if (cur().type == TokenType::Name && peek().type == TokenType::Op && peek().text == "=") {
      std::string name = advance().text;
      advance();  // '='
      args.named.emplace_back(std::move(name), parse_expression());
    } else {
      if (!args.named.empty()) error(cur(), "positional argument after a keyword argument");
      args.positional.push_back(parse_expression());
    }
  }
  expect_op(")");
  return args;
}

}  // namespace ep::jinja
