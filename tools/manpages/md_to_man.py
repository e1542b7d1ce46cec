#!/usr/bin/python3
"""Turns one of Starling's Markdown documents into a man page, so the two cannot drift:
docs/command-line.md is starling(1), docs/configuration.md is starling.toml(5).

    md_to_man.py SOURCE.md OUTPUT NAME SECTION VERSION "one-line description"

It knows the Markdown those documents use: headings, paragraphs, "- " lists, fenced code and
tables. A table row becomes a tagged paragraph: its first cell is the tag, the middle cells are
labelled with their column headers, the last cell is the text. Relative links lose their
target; code spans are bold.
"""

import re
import sys


def escape(text):
    return text.replace("\\", "\\e")


def inline(text):
    """Markdown inline markup to roff: code spans and bold to \\fB, links to their text."""
    out = []
    for i, part in enumerate(re.split(r"(`[^`]*`)", text)):
        if i % 2 == 1:  # a code span: literal, hyphens as minus signs (copy-pasteable options)
            out.append("\\fB" + escape(part[1:-1]).replace("-", "\\-") + "\\fR")
            continue
        part = escape(part)
        part = re.sub(r"\[([^\]]+)\]\((https?://[^)]+)\)", r"\1 (\2)", part)
        part = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", part)
        part = re.sub(r"\*\*([^*]+)\*\*", r"\\fB\1\\fR", part)
        out.append(part)
    return "".join(out)


def line(text):
    """One roff text line: a leading . or ' would be read as a request."""
    return "\\&" + text if text[:1] in (".", "'") else text


def cells(row):
    return [c.strip() for c in row.strip().strip("|").split("|")]


def convert(markdown, name, section, version, description):
    out = [f'.TH {name.upper()} {section} "" "starling {version}" "Starling manual"',
           ".SH NAME", f"{escape(name)} \\- {escape(description)}"]
    lines = markdown.splitlines()
    # What comes before the first "## " heading is the page's description.
    body = [t for t in lines if t.strip() and not t.startswith("# ")]
    if body and not body[0].startswith("## "):
        out.append(".SH DESCRIPTION")
    i = 0
    paragraph = []

    def flush():
        if paragraph:
            out.append(".PP")
            out.append(line(inline(" ".join(paragraph))))
            paragraph.clear()

    while i < len(lines):
        text = lines[i]
        stripped = text.strip()
        if text.startswith("# "):  # the document's title: the man page has its own
            i += 1
        elif text.startswith("## ") or text.startswith("### "):
            flush()
            title = inline(text.lstrip("#").strip())
            out.append((".SH " + title.upper()) if text.startswith("## ") else (".SS " + title))
            i += 1
        elif stripped.startswith("```"):
            flush()
            out += [".PP", ".RS 4", ".nf"]
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                out.append(line(escape(lines[i])))
                i += 1
            out += [".fi", ".RE"]
            i += 1
        elif stripped.startswith("|"):
            flush()
            header = cells(lines[i])
            i += 2  # the header and its |---| line
            while i < len(lines) and lines[i].strip().startswith("|"):
                row = cells(lines[i])
                out.append(".TP")
                out.append(line(inline(row[0])))
                middle = [f"{header[c]}: {row[c]}" for c in range(1, len(row) - 1)
                          if c < len(header) and row[c]]
                body = "; ".join(middle)
                if len(row) > 1:
                    body = (body + ". " if body else "") + row[-1]
                out.append(line(inline(body)))
                i += 1
        elif stripped.startswith("- ") or stripped.startswith("* "):
            flush()
            item = [stripped[2:]]
            i += 1
            while i < len(lines) and lines[i].startswith("  ") and lines[i].strip() and \
                    not lines[i].strip().startswith(("- ", "* ")):
                item.append(lines[i].strip())
                i += 1
            out.append(".IP \\(bu 2")
            out.append(line(inline(" ".join(item))))
        elif not stripped:
            flush()
            i += 1
        else:
            paragraph.append(stripped)
            i += 1
    flush()
    return "\n".join(out) + "\n"


def main():
    source, output, name, section, version, description = sys.argv[1:7]
    with open(source, encoding="utf-8") as f:
        page = convert(f.read(), name, section, version, description)
    with open(output, "w", encoding="utf-8") as f:
        f.write(page)


if __name__ == "__main__":
    main()
