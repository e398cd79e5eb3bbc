"""Bounds on what the classifier reads: a repository controls the migration text, so a huge file or
deeply nested code is refused with a clear reason (contract: cannot tell) before any parser sees it."""

from __future__ import annotations

MAX_BYTES = 256 * 1024  # the largest migration read; real ones are a few KiB
MAX_NESTING = 60  # brackets open at once; real migrations stay under 15
MAX_LINE = 20_000  # characters in one line: long lines drive the Ruby reader's regexes


def refusal(text: str) -> str | None:
    """Why `text` is not read, or None when it is within bounds. Linear in the text's length."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        return f"the file is {size} bytes, over the {MAX_BYTES} bytes read"
    depth = deepest = 0
    line = longest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        if ch == "\n":
            line = 0
        else:
            line += 1
            longest = max(longest, line)
    if deepest > MAX_NESTING:
        return f"brackets nest {deepest} deep, over the {MAX_NESTING} read"
    if longest > MAX_LINE:
        return f"a line is {longest} characters long, over the {MAX_LINE} read"
    return None
