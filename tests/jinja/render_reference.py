#!/usr/bin/env python3
"""Renders a chat template with Python's jinja2, configured as Hugging Face transformers does.

    render_reference.py TEMPLATE NOW CONTEXT.json...

For each CONTEXT.json (the template's variables: messages, tools, add_generation_prompt, ...,
read in document order) writes the render (UTF-8) to CONTEXT.json.out, or the error to
CONTEXT.json.err. NOW, seconds since the epoch, is what strftime_now() formats (as UTC), so that
a render is the same every day.
"""
import datetime
import json
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox


def main() -> int:
    template_path, now = sys.argv[1], float(sys.argv[2])
    with open(template_path, encoding="utf-8") as f:
        source = f.read()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime(fmt)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    template = env.from_string(source)
    for context_path in sys.argv[3:]:
        with open(context_path, encoding="utf-8") as f:
            context = json.load(f)
        try:
            out = template.render(**context)
        except Exception as e:  # the C++ side must fail too; the message need not match
            with open(context_path + ".err", "w", encoding="utf-8") as f:
                f.write(f"{type(e).__name__}: {e}\n")
            continue
        with open(context_path + ".out", "wb") as f:
            f.write(out.encode("utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
