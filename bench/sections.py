"""Sections of BENCHMARKS.md that a benchmark script keeps up to date
between its own markers (bench/compare.py rewrites the rest and keeps
them)."""

import os


def put_section(path, tag, heading, body):
    """Puts `## heading` and `body` between `<!-- tag:begin -->` and
    `<!-- tag:end -->` in the file at `path`: in place of what the markers
    held, or at the end."""
    text = open(path).read() if os.path.exists(path) else ""
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    block = f"{begin}\n## {heading}\n\n{body}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)
