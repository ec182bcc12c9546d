#!/usr/bin/env python3
"""Checks the source layout that docs/architecture.md describes.

* includes between folders of src/ point one way: a folder includes only the folders it is
  allowed to (ALLOWED below, the picture in docs/architecture.md), so there is no cycle;
* no source file is longer than 600 lines;
* every folder of src/ has a test folder of the same name under tests/.

Prints one line per violation and exits 1 if there is any.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_LINES = 600
SOURCE_SUFFIXES = {".cpp", ".h", ".cu", ".cuh", ".inc"}

# What each folder of src/ may include besides itself.
ALLOWED = {
    "core": set(),
    "kernels": {"core"},
    "model": {"core"},
    "tokenizer": {"core", "model", "jinja"},
    "runtime": {"core", "kernels", "model", "tokenizer"},
    "backend": {"core", "kernels", "model", "runtime"},
    "convert": {"core", "model", "tokenizer"},
    "http": {"core"},
    "protocol": {"core", "model", "runtime", "http"},
    "openai": {"core", "model", "tokenizer", "runtime", "http"},
    "cloud": {"core", "model", "tokenizer", "runtime", "http", "protocol", "openai"},
    "edge": {"core", "model", "tokenizer", "runtime", "http", "protocol", "openai"},
    "relay": {"core"},
    "jinja": {"core"},
    "loadgen": {"core"},
    "cli": {"core", "kernels", "model", "tokenizer", "runtime", "backend", "convert", "http",
            "protocol", "openai", "cloud", "edge", "relay", "jinja", "loadgen"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/', re.MULTILINE)


def main() -> int:
    problems = []
    src = ROOT / "src"
    folders = sorted(p.name for p in src.iterdir() if p.is_dir())
    for folder in folders:
        if folder not in ALLOWED:
            problems.append(f"src/{folder}/: a folder the layering in tools/check_layout.py "
                            "does not know")
        if not (ROOT / "tests" / folder).is_dir():
            problems.append(f"src/{folder}/: no tests/{folder}/ beside it")
    for path in sorted(src.rglob("*")):
        if path.suffix not in SOURCE_SUFFIXES:
            continue
        rel = path.relative_to(ROOT)
        folder = path.relative_to(src).parts[0]
        text = path.read_text(encoding="utf-8")
        n_lines = text.count("\n")
        if n_lines > MAX_LINES:
            problems.append(f"{rel}: {n_lines} lines (at most {MAX_LINES})")
        for target in sorted(set(INCLUDE.findall(text))):
            if target != folder and target in ALLOWED and target not in ALLOWED.get(folder, set()):
                problems.append(f"{rel}: includes {target}/, which {folder}/ may not")
    for p in problems:
        print(p)
    if problems:
        print(f"layout check: {len(problems)} problem(s)")
        return 1
    print(f"layout check: {len(folders)} folders, includes one way, files within {MAX_LINES} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
