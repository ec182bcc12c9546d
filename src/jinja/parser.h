// Recursive-descent parser from tokens to the AST, with jinja2's grammar and precedence:
// `a if c else b` < or < and < not < comparisons (in, ==, <, ...) < + - < ~ < * / // % < ** <
// unary - + < filters and tests (| name, is name) < postfix (.attr, [index], (call)).
#pragma once

#include "jinja/ast.h"
#include "jinja/lexer.h"

#include <initializer_list>
#include <string_view>
#include <vector>

namespace ep::jinja {

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}
  // The whole template; throws ep::Error "line L, column C: ..." on a syntax error.
  Body parse_template();

 private:
  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
  int depth_ = 0;       // nesting of expressions and blocks, bounded to keep the stack small
  int loop_depth_ = 0;  // for `break` / `continue`
  int macro_depth_ = 0;

  const Token& cur() const { return tokens_[pos_]; }
  const Token& peek(std::size_t n = 1) const {
    return tokens_[std::min(pos_ + n, tokens_.size() - 1)];
  }
  const Token& advance() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool at_op(std::string_view op) const;
  bool at_name(std::string_view name) const;
  bool accept_op(std::string_view op);
  bool accept_name(std::string_view name);
  void expect_op(std::string_view op);
  std::string expect_name();
  void expect_block_end();
  [[noreturn]] void error(const Token& at, const std::string& message) const;
  [[noreturn]] void unexpected(const std::string& expected) const;
  std::string describe(const Token& t) const;

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser);
    ~DepthGuard() { --p.depth_; }
    DepthGuard(const DepthGuard&) = delete;
    DepthGuard& operator=(const DepthGuard&) = delete;
  };

  // statements (parse_statements.cpp)
  Body parse_body(std::initializer_list<std::string_view> ends, std::string* found);
  StmtPtr parse_statement();
  StmtPtr parse_if(int line);
  StmtPtr parse_for(int line);
  StmtPtr parse_set(int line);
  StmtPtr parse_macro(int line);
  StmtPtr parse_call_block(int line);
  StmtPtr parse_filter_block(int line);
  StmtPtr parse_scope(int line, bool with);
  void parse_params(MacroStmt& m);
  void end_tag(std::string_view name);
  std::vector<std::unique_ptr<FilterExpr>> parse_filter_chain(bool leading_pipe);

  // expressions (parser.cpp)
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens,
                      std::initializer_list<std::string_view> end_names = {});
  ExprPtr parse_expression(bool with_condexpr = true);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter = true);
  ExprPtr parse_primary();
  ExprPtr parse_postfix(ExprPtr node);
  ExprPtr parse_filter_expr(ExprPtr node);
  ExprPtr parse_subscript(ExprPtr node);
  ExprPtr parse_subscribed();
  std::unique_ptr<FilterExpr> parse_filter(ExprPtr operand);
  ExprPtr parse_test(ExprPtr operand);
  CallArgsExpr parse_call_args();
  std::string parse_dotted_name();
};

}  // namespace ep::jinja
