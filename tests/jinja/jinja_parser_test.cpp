// The interpreter's constructs one by one; expected strings are what Python's jinja2 (3.1)
// renders with trim_blocks and lstrip_blocks. Suites named Parser* run under the sanitizers.
#include "core/error.h"
#include "jinja/template.h"
#include "jinja_cases.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace ep {
namespace {

using test::jinja_render;
using test::kJinjaContext;

struct Case {
  const char* source;
  const char* expected;
};

void check_all(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    try {
      EXPECT_EQ(jinja_render(c.source, kJinjaContext), c.expected) << "template: " << c.source;
    } catch (const Error& e) {
      ADD_FAILURE() << "template: " << c.source << "\nthrew: " << e.what();
    }
  }
}

TEST(ParserJinja, LiteralsAndPrinting) {
  check_all({
      {"{{ 1 }} {{ 1.0 }} {{ 2.50 }} {{ -3 }} {{ 1e20 }} {{ 1e15 }} {{ 0.00001 }}",
       "1 1.0 2.5 -3 1e+20 1000000000000000.0 1e-05"},
      {"{{ true }} {{ False }} {{ none }} {{ None }}", "True False None None"},
      {"{{ 'a\\tb\\x41\\u00e9\\q' }}|{{ \"it's\" }}", "a\tbA\xc3\xa9\\q|it's"},
      {"{{ [1, 'a', none, true, {'k': \"it's\"}] }}", "[1, 'a', None, True, {'k': \"it's\"}]"},
      {"{{ (1, 2) }} {{ (1,) }} {{ () }}", "(1, 2) (1,) ()"},
      {"{{ 'a' 'b' }}{{ 1_000 }}{{ 0x1f }}", "ab100031"},
      {"{{ undefined_name }}|{{ d.missing }}|{{ xs[10] }}", "||"},
  });
}

TEST(ParserJinja, Arithmetic) {
  check_all({
      {"{{ 1 + 1.0 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 % -3 }}",
       "2.0 3.5 3 2 1024 -2"},
      {"{{ 'a' + 'b' }} {{ 'a' ~ 1 ~ none }} {{ 'ab' * 3 }} {{ xs + [4] }} {{ xs * 2 }}",
       "ab a1None ababab [1, 2, 3, 4] [1, 2, 3, 1, 2, 3]"},
      {"{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ true + 1 }}", "7 9 4 2"},
      {"{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1, 2] == [1, 2] }} {{ d == {'b': 2, "
       "'a': 1} }}",
       "True True True True True"},
      {"{{ 2 in xs }} {{ 5 not in xs }} {{ 'ell' in s }} {{ 'a' in d }} {{ 1 in foo }}",
       "True True True True False"},
      {"{{ 1 and 0 }} {{ 0 or 'x' }} {{ not 0 }} {{ not xs }} {{ [] or none }}",
       "0 x True False None"},
      {"{{ 'y' if xs else 'n' }} {{ 'y' if [] else 'n' }} [{{ 'y' if false }}]", "y n []"},
  });
}

TEST(ParserJinja, SubscriptsAndSlices) {
  check_all({
      {"{{ xs[0] }} {{ xs[-1] }} {{ xs.1 }} {{ d['a'] }} {{ d.b }} {{ s[1] }} {{ s[-1] }}",
       "1 3 2 1 2 e o"},
      {"{{ xs[1:] }} {{ xs[:-1] }} {{ xs[::-1] }} {{ xs[::2] }} {{ s[1:3] }} {{ s[::-1] }}",
       "[2, 3] [1, 2] [3, 2, 1] [1, 3] el olleH"},
      {"{{ 'h\xc3\xa9llo'[1:3] }} {{ 'h\xc3\xa9llo'|length }} {{ 'h\xc3\xa9llo'[1] }}",
       "\xc3\xa9l 5 \xc3\xa9"},
      {"{{ msgs[0].role }} {{ msgs[1]['content'] }} {{ msgs|length }}", "user yo 2"},
  });
}

TEST(ParserJinja, Methods) {
  check_all({
      {"{{ s.startswith('He') }} {{ s.endswith(('x', 'lo')) }} {{ s.upper() }} {{ s.lower() }}",
       "True True HELLO hello"},
      {"[{{ '  a b  '.strip() }}] [{{ ' a '.lstrip() }}] [{{ ' a '.rstrip() }}] [{{ "
       "'xxaxx'.strip('x') }}]",
       "[a b] [a ] [ a] [a]"},
      {"{{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }}",
       "['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c']"},
      {"{{ 'hello world'.title() }} {{ 'aXbX'.replace('X', '-') }} {{ 'hELLO'.capitalize() }}",
       "Hello World a-b- Hello"},
      {"{{ d.items() | list }} {{ d.keys() | list }} {{ d.values() | list }}",
       "[('a', 1), ('b', 2)] ['a', 'b'] [1, 2]"},
      {"{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 5) }}", "1 None 5"},
      {"{{ 'x</think>y'.split('</think>')[-1] }}", "y"},
  });
}

TEST(ParserJinja, Filters) {
  check_all({
      {"[{{ '  a  ' | trim }}] {{ s | upper }} {{ s | lower }} {{ xs | length }} {{ d | count }}",
       "[a] HELLO hello 3 2"},
      {"{{ foo | default('x') }} {{ '' | default('x') }} {{ '' | default('x', true) }} {{ none | "
       "d('y', boolean=true) }}",
       "x  x y"},
      {"{{ xs | join(', ') }} {{ msgs | map(attribute='role') | join }} {{ xs | map('string') | "
       "list }}",
       "1, 2, 3 userassistant ['1', '2', '3']"},
      {"{{ msgs | selectattr('role', 'equalto', 'user') | list }}",
       "[{'role': 'user', 'content': 'hi'}]"},
      {"{{ msgs | rejectattr('role', 'eq', 'user') | map(attribute='content') | first }}", "yo"},
      {"{{ xs | select('odd') | list }} {{ xs | reject('even') | list }} {{ ['a', 'b'] | "
       "reject('equalto', 'a') | list }}",
       "[1, 3] [1, 3] ['b']"},
      {"{{ xs | first }} {{ xs | last }} {{ xs | reverse | list }} {{ 'abc' | reverse }} {{ s | "
       "list }}",
       "1 3 [3, 2, 1] cba ['H', 'e', 'l', 'l', 'o']"},
      {"{{ [3, 1, 2] | sort }} {{ ['b', 'A', 'c'] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} "
       "{{ ['b', 'A', 'a'] | unique | list }}",
       "[1, 2, 3] ['A', 'b', 'c'] [3, 2, 1] ['b', 'A']"},
      {"{{ msgs | sort(attribute='content') | map(attribute='role') | list }}",
       "['user', 'assistant']"},
      {"{{ 5 | string + 'x' }} {{ '42' | int + 1 }} {{ '4.7' | int }} {{ 'x' | int }} {{ 3.9 | int "
       "}} {{ '2.5' | float }}",
       "5x 43 4 0 3 2.5"},
      {"{{ 'hello world' | capitalize }} {{ 'hello wORLD-x' | title }} {{ 'aXb' | replace('X', '') "
       "}}",
       "Hello world Hello World-X ab"},
      {"{{ d | items | list }} {{ '<b>' | safe }} {{ xs | sum }} {{ xs | max }} {{ xs | min }}",
       "[('a', 1), ('b', 2)] <b> 6 3 1"},
      {"{{ '  a\\n b\\n\\nc' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}",
       "  a\n   b\n\n  c|  a\n  b"},
  });
}

TEST(ParserJinja, ToJson) {
  check_all({
      {"{{ xs | tojson }} {{ d | tojson }} {{ 'é\\n\"' | tojson }} {{ none | tojson }} {{ 1.5 | "
       "tojson }}",
       "[1, 2, 3] {\"a\": 1, \"b\": 2} \"\xc3\xa9\\n\\\"\" null 1.5"},
      {"{{ d | tojson(indent=2) }}", "{\n  \"a\": 1,\n  \"b\": 2\n}"},
      {"{{ {'b': [1, {}], 'a': []} | tojson(indent=4) }}",
       "{\n    \"b\": [\n        1,\n        {}\n    ],\n    \"a\": []\n}"},
      {"{{ {'b': 1, 'a': '<&>'} | tojson(sort_keys=true) }} {{ 'é' | tojson(ensure_ascii=true) }}",
       "{\"a\": \"<&>\", \"b\": 1} \"\\u00e9\""},
      {"{{ tools[0] | tojson }}",
       "{\"name\": \"f\", \"description\": \"g\xc3\xa9\", \"parameters\": {\"type\": \"object\"}}"},
  });
}

TEST(ParserJinja, Tests) {
  check_all({
      {"{{ foo is defined }} {{ xs is defined }} {{ foo is undefined }} {{ none is none }} {{ s is "
       "not none }}",
       "False True True True True"},
      {"{{ s is string }} {{ 1 is number }} {{ true is number }} {{ 1.5 is number }} {{ d is "
       "mapping }} {{ xs is mapping }}",
       "True True True True True False"},
      {"{{ xs is iterable }} {{ s is iterable }} {{ 1 is iterable }} {{ foo is iterable }} {{ d is "
       "sequence }} {{ 1 is sequence }}",
       "True True False True True False"},
      {"{{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ 1 is true }} {{ false is "
       "false }}",
       "True False True False True"},
      {"{{ 1 is odd }} {{ 2 is even }} {{ 3 is equalto 3 }} {{ 3 is eq(4) }} {{ 'a' is ne 'b' }} "
       "{{ 9 is divisibleby 3 }}",
       "True True True False True True"},
  });
}

TEST(ParserJinja, Loops) {
  check_all({
      {"{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.length }}"
       "{{ loop.first }}{{ loop.last }},{% endfor %}",
       "1033TrueFalse,2123FalseFalse,3213FalseTrue,"},
      {"{% for x in [] %}x{% else %}empty{% endfor %}{% for x in foo %}y{% else %}E{% endfor %}",
       "emptyE"},
      {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d | items %}{{ k "
       "}}{% endfor %}",
       "a=1;b=2;ab"},
      {"{% for x in xs if x != 2 %}{{ x }}/{{ loop.length }} {% endfor %}", "1/2 3/2 "},
      {"{% for x in xs %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 3 %}{% break %}{% "
       "endif %}{{ x }}{% endfor %}",
       "1"},
      {"{% for x in xs %}{{ loop.previtem }}-{{ loop.nextitem }}|{% endfor %}", "-2|1-3|2-|"},
      {"{% for x in xs %}{{ loop.cycle('a', 'b') }}{% endfor %}{% for c in 'ab' %}{{ c }}.{% "
       "endfor %}",
       "abaa.b."},
      {"{% for x in d %}{{ x }}{% endfor %}{% for i in range(3) %}{{ i }}{% endfor %}{{ range(1, "
       "7, 2) | list }}",
       "ab012[1, 3, 5]"},
      {"{% for row in [[1, 2], [3]] %}{% for y in row %}{{ loop.index }}{% endfor %}{{ loop.index "
       "}};{% endfor %}",
       "121;12;"},
  });
}

TEST(ParserJinja, SetScopingAndNamespace) {
  check_all({
      {"{% set x = 1 %}{% for i in [1] %}[{{ x }}]{% set x = 2 %}{{ x }}{% endfor %}{{ x }}",
       "[1]21"},
      {"{% for i in [1, 2] %}{% if i == 2 %}[{{ x }}]{% endif %}{% set x = i %}{% endfor %}", "[]"},
      {"{% set ns = namespace(a=1, b='x') %}{% for i in xs %}{% set ns.a = ns.a + i %}{% endfor "
       "%}{{ ns.a }}{{ ns.b }}",
       "7x"},
      {"{% set ns = namespace() %}{% set ns.found = false %}{% for m in msgs %}{% if m.role == "
       "'assistant' %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}",
       "True"},
      {"{% set a, b = [1, 2] %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}", "12(1, 2)"},
      {"{% set x %}in {{ s }}{% endset %}[{{ x }}]{% set y | upper %}abc{% endset %}{{ y }}",
       "[in Hello]ABC"},
      {"{% if true %}{% set z = 5 %}{% endif %}{{ z }}", "5"},
  });
}

TEST(ParserJinja, Macros) {
  check_all({
      {"{% macro m(a, b='B') %}<{{ a }}{{ b }}>{% endmacro %}{{ m(1) }}{{ m(1, 2) }}{{ m(b=3, a=4) "
       "}}",
       "<1B><12><43>"},
      {"{% macro m() %}{{ x }}{% endmacro %}{% set x = 5 %}{{ m() }}", "5"},
      {"{% macro f(n) %}{% if n > 0 %}{{ n }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(3) }}",
       "321"},
      {"{% macro m(a) %}[{{ a }}]{% endmacro %}{{ m() }}{{ m | string | length > 0 }}", "[]True"},
      {"{% macro wrap() %}({{ caller() }}){% endmacro %}{% call wrap() %}in{% endcall %}", "(in)"},
      {"{% filter upper %}ab{{ s }}{% endfilter %}{% with q = 2 %}{{ q }}{% endwith %}{{ q }}",
       "ABHELLO2"},
  });
}

TEST(ParserJinja, WhitespaceControl) {
  // trim_blocks + lstrip_blocks (Hugging Face's settings)
  check_all({
      {"{% if true %}\n  a\n{% endif %}\nb", "  a\nb"},
      {"  {% if true %}\nx\n  {% endif %}\n", "x\n"},
      {"a  {{- ' b ' -}}  c", "a b c"},
      {"a\n  {%- if true -%}\n  b\n{%- endif %}", "ab"},
      {"x {% if true %}y{% endif %} z", "x y z"},
      {"  {%+ if true %}a{% endif %}", "  a"},
      {"{# comment #}\na{# c2 -#}   b\n  {# c3 #}\nc", "ab\nc"},
      {"{% raw %}{{ x }}{% endraw %}", "{{ x }}"},
      {"a\r\nb\rc\n", "a\nb\nc"},
  });
  // without the options
  jinja::Options plain;
  EXPECT_EQ(test::jinja_render("{% if true %}\n  a\n{% endif %}\nb", "{}", plain), "\n  a\n\nb");
  EXPECT_EQ(test::jinja_render("x\n", "{}", plain), "x");
}

TEST(ParserJinja, Globals) {
  jinja::Options o = jinja::Options::hugging_face();
  o.now = 1721952000;  // 2024-07-26 00:00:00 UTC
  EXPECT_EQ(test::jinja_render("{{ strftime_now('%d %b %Y') }}", "{}", o), "26 Jul 2024");
  EXPECT_EQ(test::jinja_render("{{ dict(a=1) }} {{ namespace(a=1) }}", "{}"),
            "{'a': 1} <Namespace {'a': 1}>");
}

void expect_error(const std::string& source, const std::string& needle,
                  const std::string& context = "{}") {
  try {
    const std::string out = jinja_render(source, context);
    ADD_FAILURE() << "no error for: " << source << "\nrendered: " << out;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
        << "template: " << source << "\nerror: " << e.what();
  }
}

TEST(ParserJinjaErrors, ParseErrorsNameLineAndColumn) {
  expect_error("a\n{% if x %}b",
               "template: line 2, column 12: unexpected end of template, expected 'elif' or 'else' "
               "or 'endif'");
  expect_error("{{ 1 + }}", "line 1, column 8: unexpected '}}', expected an expression");
  expect_error("{% for x in %}", "line 1");
  expect_error("{% endif %}", "unknown tag 'endif'");
  expect_error("{% include 'x' %}", "the 'include' tag is not supported");
  expect_error("{{ 'abc }}", "unterminated string literal");
  expect_error("{{ (1 }}", "line 1");
  expect_error("{{ 1 ]", "unexpected ']'");
  expect_error("{# never closed", "missing end of comment tag");
  expect_error("{% break %}", "'break' outside of a loop");
  expect_error("{{ x ? y }}", "unexpected character '?'");
  expect_error("{{ " + std::string(500, '(') + "1" + std::string(500, ')') + " }}",
               "nested deeper");
  expect_error("{{ " + std::string(1000, '-') + "1 }}", "nested deeper");
}

TEST(ParserJinjaErrors, RenderErrors) {
  expect_error("a\n{{ raise_exception('roles must alternate') }}",
               "template: line 2: raise_exception: roles must alternate");
  expect_error("{{ xs() }}", "'list' object is not callable", test::kJinjaContext);
  expect_error("{{ foo() }}", "'foo' is undefined");
  expect_error("{{ foo.bar }}", "'foo' is undefined");
  expect_error("{{ foo + 1 }}", "'foo' is undefined");
  expect_error("{{ 1 + 'a' }}", "unsupported operand type(s) for +: 'int' and 'str'");
  expect_error("{{ 'a' + 1 }}", "can only concatenate str");
  expect_error("{{ 1 < 'a' }}", "'<' not supported between instances of 'int' and 'str'");
  expect_error("{{ 1 / 0 }}", "division by zero");
  expect_error("{{ x | nosuchfilter }}", "no filter named 'nosuchfilter'");
  expect_error("{{ x is nosuchtest }}", "no test named 'nosuchtest'");
  expect_error("{% set x = 1 %}{% set x.a = 2 %}", "non-namespace");
  expect_error("{% for a, b in [1] %}{% endfor %}", "not iterable");
  expect_error("{{ 9223372036854775807 + 1 }}", "integer overflow");
}

TEST(ParserJinjaErrors, Limits) {
  expect_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "macro calls nested deeper than");
  expect_error("{% for i in range(2000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}",
               "loop iterations");
  expect_error("{{ range(100000000) }}", "over the loop limit");
  expect_error(
      "{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% "
      "endfor %}",
      "longer than the limit");
  expect_error("{{ 'ab' * 100000000000 }}", "longer than the limit");
  jinja::Options small = jinja::Options::hugging_face();
  small.max_output_bytes = 10;
  try {
    test::jinja_render("{% for i in range(100) %}xx{% endfor %}", "{}", small);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("output longer than the limit of 10 bytes"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace ep
