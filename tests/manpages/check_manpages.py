#!/usr/bin/python3
"""The built man pages render without a groff warning and name everything they must:

    check_manpages.py MAN_DIR STARLING_BINARY EXAMPLE_CONFIG

every option and command `starling --help` lists is in starling(1), and every key the example
config sets is in starling.toml(5) (both pages are generated from docs/, so this catches a
flag or key added to the code but not to the docs).
"""

import os
import re
import subprocess
import sys
import tomllib


def fail(message):
    print(f"check_manpages: {message}", file=sys.stderr)
    sys.exit(1)


def rendered_warnings(page):
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", page], capture_output=True,
                       text=True)
    return r.returncode, r.stderr.strip()


def keys(table, prefix=""):
    for name, value in table.items():
        if isinstance(value, dict):
            yield from keys(value, f"{prefix}{name}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                yield from keys(item, f"{prefix}{name}.")
        else:
            yield prefix + name


def main():
    man_dir, binary, example = sys.argv[1:4]
    command_page = os.path.join(man_dir, "starling.1")
    config_page = os.path.join(man_dir, "starling.toml.5")
    for page in (command_page, config_page):
        if not os.path.isfile(page):
            fail(f"{page} was not built")
        code, warnings = rendered_warnings(page)
        if code != 0 or warnings:
            fail(f"groff on {page}: exit {code}: {warnings}")

    with open(command_page) as f:
        command_text = f.read()
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", help_text))
    if len(options) < 5:
        fail(f"could not read the options from {binary} --help:\n{help_text}")
    subcommands = re.findall(r"^  ([a-z][a-z-]+) ", help_text.split("Subcommands:")[-1], re.M)
    missing = [o for o in sorted(options) if o.replace("-", "\\-") not in command_text]
    missing += [c for c in subcommands if c.replace("-", "\\-") not in command_text]
    if "passwd" not in command_text:
        missing.append("passwd")
    if missing:
        fail(f"starling(1) (docs/command-line.md) does not mention: {', '.join(missing)}")

    with open(config_page) as f:
        config_text = f.read()
    with open(example, "rb") as f:
        example_keys = sorted(set(keys(tomllib.load(f))))
    def tag(key):  # how the page shows a key: bold, hyphens as minus signs
        return "\\fB" + key.split(".")[-1].replace("-", "\\-") + "\\fR"
    missing = [k for k in example_keys if tag(k) not in config_text]
    if missing:
        fail(f"starling.toml(5) (docs/configuration.md) does not describe: {', '.join(missing)}")
    print(f"check_manpages: both pages render cleanly; {len(options)} options, "
          f"{len(subcommands)} commands and {len(example_keys)} example keys documented")


if __name__ == "__main__":
    main()
