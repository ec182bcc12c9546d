// The parsed template: expressions and statements, owned by the Template that parsed them.
#pragma once

#include "jinja/value.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ep::jinja {

enum class ExprKind : std::uint8_t {
  Literal,  // a constant (also folded lists of constants are not made: lists are built each time)
  Name,
  Attr,   // obj.name
  Item,   // obj[index]
  Slice,  // obj[start:stop:step]
  Neg,
  Pos,
  Not,
  And,
  Or,
  Binary,   // + - * / // % ** ~
  Compare,  // a chain: a < b <= c, ==, !=, in, not in
  Test,     // x is name(args)
  Filter,   // x | name(args)
  Call,
  Cond,  // a if cond else b
  List,
  Tuple,
  Dict,
};

struct Expr {
  ExprKind kind;
  int line;
  Expr(ExprKind k, int l) : kind(k), line(l) {}
  virtual ~Expr() = default;
};
using ExprPtr = std::unique_ptr<Expr>;

struct CallArgsExpr {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> named;
};

struct LiteralExpr : Expr {
  Value value;
  LiteralExpr(Value v, int l) : Expr(ExprKind::Literal, l), value(std::move(v)) {}
};
struct NameExpr : Expr {
  std::string name;
  NameExpr(std::string n, int l) : Expr(ExprKind::Name, l), name(std::move(n)) {}
};
struct AttrExpr : Expr {
  ExprPtr object;
  std::string name;
  AttrExpr(ExprPtr o, std::string n, int l)
      : Expr(ExprKind::Attr, l), object(std::move(o)), name(std::move(n)) {}
};
struct ItemExpr : Expr {
  ExprPtr object, index;
  ItemExpr(ExprPtr o, ExprPtr i, int l)
      : Expr(ExprKind::Item, l), object(std::move(o)), index(std::move(i)) {}
};
struct SliceExpr : Expr {
  ExprPtr object, start, stop, step;  // each bound may be null
  explicit SliceExpr(int l) : Expr(ExprKind::Slice, l) {}
};
struct UnaryExpr : Expr {
  ExprPtr operand;
  UnaryExpr(ExprKind k, ExprPtr o, int l) : Expr(k, l), operand(std::move(o)) {}
};
struct BinaryExpr : Expr {  // also And / Or
  std::string op;
  ExprPtr left, right;
  BinaryExpr(ExprKind k, std::string o, ExprPtr a, ExprPtr b, int l)
      : Expr(k, l), op(std::move(o)), left(std::move(a)), right(std::move(b)) {}
};
struct CompareExpr : Expr {
  ExprPtr first;
  std::vector<std::pair<std::string, ExprPtr>> rest;  // ops: == != < <= > >= in notin
  explicit CompareExpr(int l) : Expr(ExprKind::Compare, l) {}
};
struct TestExpr : Expr {
  ExprPtr operand;
  std::string name;
  CallArgsExpr args;
  bool negated = false;
  explicit TestExpr(int l) : Expr(ExprKind::Test, l) {}
};
struct FilterExpr : Expr {
  ExprPtr operand;
  std::string name;
  CallArgsExpr args;
  explicit FilterExpr(int l) : Expr(ExprKind::Filter, l) {}
};
struct CallExpr : Expr {
  ExprPtr callee;
  CallArgsExpr args;
  explicit CallExpr(int l) : Expr(ExprKind::Call, l) {}
};
struct CondExpr : Expr {
  ExprPtr cond, then, otherwise;  // otherwise may be null (undefined then)
  explicit CondExpr(int l) : Expr(ExprKind::Cond, l) {}
};
struct ListExpr : Expr {  // List and Tuple
  std::vector<ExprPtr> items;
  ListExpr(ExprKind k, int l) : Expr(k, l) {}
};
struct DictExpr : Expr {
  std::vector<std::pair<ExprPtr, ExprPtr>> items;
  explicit DictExpr(int l) : Expr(ExprKind::Dict, l) {}
};

enum class StmtKind : std::uint8_t {
  Text,
  Print,
  If,
  For,
  Set,       // set a = ..., set a, b = ..., set ns.attr = ...
  SetBlock,  // set a %}...{% endset
  Macro,
  CallBlock,    // call macro(...) %}...{% endcall: the body is caller()
  FilterBlock,  // filter name %}...{% endfilter
  Scope,        // with / generation: a body in a scope of its own
  Break,
  Continue,
};

struct Stmt {
  StmtKind kind;
  int line;
  Stmt(StmtKind k, int l) : kind(k), line(l) {}
  virtual ~Stmt() = default;
};
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct TextStmt : Stmt {
  std::string text;
  TextStmt(std::string t, int l) : Stmt(StmtKind::Text, l), text(std::move(t)) {}
};
struct PrintStmt : Stmt {
  ExprPtr expr;
  PrintStmt(ExprPtr e, int l) : Stmt(StmtKind::Print, l), expr(std::move(e)) {}
};
struct IfStmt : Stmt {
  std::vector<std::pair<ExprPtr, Body>> branches;  // if and each elif
  Body otherwise;
  explicit IfStmt(int l) : Stmt(StmtKind::If, l) {}
};
struct ForStmt : Stmt {
  std::vector<std::string> targets;  // one name, or several to unpack each item into
  bool unpack = false;
  ExprPtr iterable, filter;  // filter: `for x in xs if cond` (may be null)
  bool recursive = false;
  Body body, otherwise;
  explicit ForStmt(int l) : Stmt(StmtKind::For, l) {}
};
struct SetStmt : Stmt {
  std::vector<std::string> targets;  // names; or {namespace, attribute} when attr is set
  bool unpack = false;
  bool attr = false;
  ExprPtr value;
  explicit SetStmt(int l) : Stmt(StmtKind::Set, l) {}
};
struct SetBlockStmt : Stmt {
  std::string target;
  std::string attr;                                  // set ns.attr %}...: the attribute, else empty
  std::vector<std::unique_ptr<FilterExpr>> filters;  // applied to the body, in order
  Body body;
  explicit SetBlockStmt(int l) : Stmt(StmtKind::SetBlock, l) {}
};
struct MacroStmt : Stmt {
  std::string name;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per parameter, null where there is none
  Body body;
  explicit MacroStmt(int l) : Stmt(StmtKind::Macro, l) {}
};
struct CallBlockStmt : Stmt {
  std::unique_ptr<CallExpr> call;
  std::unique_ptr<MacroStmt> caller;  // the body as a macro named "caller"
  explicit CallBlockStmt(int l) : Stmt(StmtKind::CallBlock, l) {}
};
struct FilterBlockStmt : Stmt {
  std::vector<std::unique_ptr<FilterExpr>> filters;
  Body body;
  explicit FilterBlockStmt(int l) : Stmt(StmtKind::FilterBlock, l) {}
};
struct ScopeStmt : Stmt {
  std::vector<std::pair<std::string, ExprPtr>> assignments;  // with a = 1, b = 2
  Body body;
  explicit ScopeStmt(int l) : Stmt(StmtKind::Scope, l) {}
};

}  // namespace ep::jinja
