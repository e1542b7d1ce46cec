"""Checks that no #include in src/ goes upward against the layering in docs/architecture.md.

The module table there is the single statement of the layering: its first column names each
folder under src/ (a library), its last column what that folder depends on. A file may include
its own folder and anything its folder depends on, directly or through those folders' own
dependencies; anything else is an upward (or sideways) include and fails this check, which
names the file, the line and the include. Generated headers (starling/version.h) are allowed.

Usage: check_layering.py SOURCE_DIR
"""

import os
import re
import sys

ROW = re.compile(r"^\| `src/([a-z_/]+)` \|.*\| ([^|]+) \|\s*$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
GENERATED = ("starling/",)


def read_layering(architecture):
    depends = {}
    with open(architecture) as f:
        for line in f:
            m = ROW.match(line)
            if not m:
                continue
            module, deps = m.group(1), m.group(2)
            names = set()
            for word in re.split(r"[,;]", deps):
                word = word.strip().strip("`")
                word = word.split(" ")[0]
                if word.startswith("src/"):
                    word = word[4:]
                if word and word != "nothing":
                    names.add(word)
            depends[module] = names
    return depends


def module_of(path, modules):
    """The deepest module folder that holds path (relative to src/)."""
    best = None
    for m in modules:
        if path == m or path.startswith(m + "/"):
            if best is None or len(m) > len(best):
                best = m
    return best


def closure(module, depends):
    seen = set()
    stack = [module]
    while stack:
        m = stack.pop()
        for d in depends.get(m, ()):
            if d not in seen:
                seen.add(d)
                stack.append(d)
    return seen


def main():
    source_dir = sys.argv[1] if len(sys.argv) > 1 else os.getcwd()
    depends = read_layering(os.path.join(source_dir, "docs", "architecture.md"))
    if not depends:
        print("no module table found in docs/architecture.md")
        return 1
    unknown = {d for deps in depends.values() for d in deps if d not in depends}
    problems = [f"docs/architecture.md: '{d}' is not a module in the table" for d in sorted(unknown)]
    src = os.path.join(source_dir, "src")
    checked = 0
    for root, _, files in os.walk(src):
        for name in sorted(files):
            if not name.endswith((".cc", ".h")):
                continue
            rel = os.path.relpath(os.path.join(root, name), src)
            own = module_of(rel, depends)
            if own is None:
                problems.append(f"src/{rel}: its folder is not in the module table")
                continue
            allowed = closure(own, depends) | {own}
            with open(os.path.join(root, name)) as f:
                for number, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m or m.group(1).startswith(GENERATED):
                        continue
                    checked += 1
                    target = module_of(m.group(1), depends)
                    if target is None:
                        problems.append(f"src/{rel}:{number}: \"{m.group(1)}\" is in no module")
                    elif target not in allowed:
                        problems.append(f"src/{rel}:{number}: {own} includes \"{m.group(1)}\" "
                                        f"but does not depend on {target}")
    for p in problems:
        print(p)
    print(f"{checked} includes checked, {len(problems)} against the layering")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
