"""Ruby migration text, read without Ruby: the statements `change`/`up` run, and their arguments."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEREDOC = re.compile(r"<<[~-]?(['\"]?)([A-Z_]+)\1")
_WRAPPER = re.compile(r"^(?:safety_assured|up_only|dir\.up|reversible)\s*(?:do\s*(?:\|\w+\|)?|\{\s*(?:\|\w+\|)?)"
                      r"\s*(?P<inner>.*?)\s*\}?$")
_SKIP_BLOCK = re.compile(r"^(?:def\s+(?:self\.)?down\b|dir\.down\s+do\b)")
_OPENS_BLOCK = re.compile(r"(?:\bdo\s*(?:\|[^|]*\|)?$)|^(?:def|if|unless|case|begin|while|until|class|module)\b")
MAX_STATEMENT = 20_000


def _code_of(line: str) -> str:
    """The line without its comment (a `#` outside a string)."""
    if line.lstrip().startswith("#"):
        return ""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or (line[i - 1] != "{" and line[i - 1].isspace())):
            return line[:i].rstrip()
    return line.rstrip()


def statements(text: str) -> tuple[list[str], list[str]]:
    """Logical statements of the migration's `change`/`up` bodies, comments dropped, each heredoc
    replaced by a `HEREDOC<n>` marker whose text is in the second list. `def down` and
    `dir.down do` blocks are skipped: a deploy never runs them."""
    lines = text.splitlines()
    out: list[str] = []
    heredocs: list[str] = []
    skip_depth = 0  # > 0 inside a block being skipped
    i = 0
    while i < len(lines):
        stripped = _code_of(lines[i]).strip()
        i += 1
        if not stripped:
            continue
        heredoc = _HEREDOC.search(stripped)
        if heredoc:
            body = []
            while i < len(lines) and lines[i].strip() != heredoc.group(2):
                body.append(lines[i])
                i += 1
            i += 1
            heredocs.append("\n".join(body))
            stripped = stripped[: heredoc.start()] + f"HEREDOC{len(heredocs) - 1}" + stripped[heredoc.end():]
        # Arguments that run onto the next line end with a comma or an open bracket.
        while stripped.endswith((",", "(", "[", "{")) and i < len(lines) and len(stripped) < MAX_STATEMENT:
            stripped += " " + _code_of(lines[i]).strip()
            i += 1
        if skip_depth:
            if _OPENS_BLOCK.search(stripped):
                skip_depth += 1
            elif stripped == "end":
                skip_depth -= 1
            continue
        if _SKIP_BLOCK.match(stripped):
            skip_depth = 1
            continue
        if re.match(r"^dir\.down\s*\{", stripped):
            continue
        wrapped = _WRAPPER.match(stripped)
        if wrapped:
            stripped = wrapped.group("inner")
            if not stripped:
                continue
        out.extend(part for part in _split_top(stripped, ";") if part)
    return out, heredocs


def hidden_code(args: str) -> str | None:
    """What in a call's arguments may run more than the call: a condition (`if`, `&&`), a second
    migration method, a Ruby interpolation. None when the arguments are plain values."""
    code = re.sub(r"'(?:[^'\\]|\\.)*'", "''", args)
    if re.search(r'"(?:[^"\\]|\\.)*#\{', code):
        return "an interpolated string"
    code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', code)
    code = re.sub(r":\w+[!?]?|\b\w+:(?!:)", " ", code)  # symbols and option keys are names, not calls
    found = re.search(r"\b(?:if|unless|and|or|rescue|while|until|then)\b|&&|\|\||\b(?:add|remove|drop|rename|change|"
                      r"create|validate|enable|disable)_\w+|\bexecute\b|`", code)
    return found.group(0) if found else None


@dataclass
class Args:
    positional: list[str] = field(default_factory=list)  # symbols and strings unquoted, the rest as written
    options: dict[str, str] = field(default_factory=dict)
    raw: str = ""


_OPTION = re.compile(r"^(?::(\w+)\s*=>|[\"'](\w+)[\"']\s*=>|(\w+):(?!:))\s*(.*)$", re.DOTALL)


def parse_args(text: str) -> Args:
    """Top-level comma-separated arguments; `key: value` and `:key => value` are options."""
    args = Args(raw=text)
    for token in _split_top(text):
        option = _OPTION.match(token)
        if option:
            key = option.group(1) or option.group(2) or option.group(3)
            args.options[key] = option.group(4).strip()
        else:
            args.positional.append(literal(token))
    return args


def literal(token: str) -> str:
    token = token.strip()
    if token.startswith(":") and re.fullmatch(r":\w+[!?]?", token):
        return token[1:]
    if len(token) >= 2 and token[0] == token[-1] and token[0] in "'\"":
        return token[1:-1]
    return token


def _split_top(text: str, separator: str = ",") -> list[str]:
    parts, current, depth, quote = [], [], 0, ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == separator and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return [p for p in parts if p]


_CALL = re.compile(r"^(?:(?P<recv>[A-Za-z_][\w:]*(?:\.[a-z_]\w*[!?]?)*)\.)?(?P<method>[a-z_]\w*[!?]?)"
                   r"(?:\s*\((?P<paren>.*)\)|\s+(?P<bare>.*?)|)\s*(?P<block>\bdo\b.*|\{\s*\|.*)?$", re.DOTALL)


@dataclass(frozen=True)
class Call:
    recv: str | None
    method: str
    args: Args
    block: bool  # the statement opens a `do ... end` block


def parse_call(statement: str) -> Call | None:
    match = _CALL.match(statement)
    if not match:
        return None
    text = match.group("paren") if match.group("paren") is not None else match.group("bare") or ""
    return Call(match.group("recv"), match.group("method"), parse_args(text), match.group("block") is not None)
