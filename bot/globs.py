"""Glob matching in time linear in the text, whatever the pattern.

Patterns come from repository configs (branch globs, migration paths), so they are hostile:
a regex translation backtracks (`**a` twelve times against a 32-character path took seconds).
Here a pattern compiles to a small NFA that is simulated a character at a time, with the sets
of states it reaches cached as a lazy DFA: the cost is O(len(text) * len(pattern)) at worst and
one dict lookup per character once warm.

Syntax: `*`, `?`, `[abc]`, `[a-z]`, `[!abc]` / `[^abc]`, and `**`. Everything else is literal,
and matching is case-sensitive. With `paths=True`, `*`, `?` and classes stay inside one
directory, `**` spans any, and `**/` matches zero or more whole directories. With `paths=False`
(branch names, like fnmatch), `*` matches anything, `/` included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

MAX_PATTERN = 256
# Past this many cached transitions we keep simulating without caching: memory stays bounded.
_MAX_CACHED = 4096

Pred = Callable[[str], bool]


@dataclass
class _State:
    pred: Pred | None = None  # consumes one character when pred(c); None: an epsilon split
    out: list[int] = field(default_factory=list)


def _any(c: str) -> bool:
    return True


def _not_slash(c: str) -> bool:
    return c != "/"


def _literal(lit: str) -> Pred:
    def pred(c: str) -> bool:
        return c == lit

    return pred


def _class(body: str, negate: bool, paths: bool) -> Pred:
    chars: set[str] = set()
    ranges: list[tuple[str, str]] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            ranges.append((body[i], body[i + 2]))
            i += 3
        else:
            chars.add(body[i])
            i += 1

    def pred(c: str) -> bool:
        if paths and c == "/":
            return False
        hit = c in chars or any(lo <= c <= hi for lo, hi in ranges)
        return hit != negate

    return pred


class Glob:
    """A compiled glob: `Glob("db/**/*.sql", paths=True).match("db/x/1.sql")`."""

    def __init__(self, pattern: str, paths: bool = False):
        if len(pattern) > MAX_PATTERN:
            raise ValueError(f"glob longer than {MAX_PATTERN} characters")
        self.pattern = pattern
        self.paths = paths
        self._states: list[_State] = []
        self._build(pattern)
        self._start = self._closure(frozenset([0]))
        self._cache: dict[tuple[frozenset[int], str], frozenset[int]] = {}

    def __repr__(self) -> str:
        return f"Glob({self.pattern!r}, paths={self.paths})"

    # -- compile ---------------------------------------------------------------------------

    def _add(self, pred: Pred | None) -> int:
        self._states.append(_State(pred))
        return len(self._states) - 1

    def _build(self, pattern: str) -> None:
        """Thompson construction; each piece's last state points at the next piece's first."""
        one = _not_slash if self.paths else _any
        i = 0
        while i < len(pattern):
            c = pattern[i]
            here = len(self._states)
            if pattern.startswith("**/", i) and self.paths:
                # split -> {next, loop}; loop -> split2; split2 -> {any -> loop, '/' -> next}
                split = self._add(None)
                loop = self._add(None)
                anyc = self._add(_any)
                slash = self._add(_literal("/"))
                nxt = len(self._states)
                self._states[split].out = [nxt, loop]
                self._states[loop].out = [anyc, slash]
                self._states[anyc].out = [loop]
                self._states[slash].out = [nxt]
                i += 3
                continue
            if c == "*":
                star = len(pattern) - len(pattern[i:].lstrip("*"))  # a run of stars is one star or `**`
                pred = _any if (not self.paths or star - i >= 2) else _not_slash
                split = self._add(None)
                eat = self._add(pred)
                self._states[eat].out = [split]
                self._states[split].out = [eat, len(self._states)]
                i = star
                continue
            if c == "?":
                self._add(one)
            elif c == "[" and (end := _class_end(pattern, i)) is not None:
                body = pattern[i + 1:end]
                negate = body[:1] in ("!", "^")
                self._add(_class(body[1:] if negate else body, negate, self.paths))
                i = end
            else:
                self._add(_literal(c))
            self._states[here].out = [here + 1]
            i += 1
        self._add(None)  # the accepting state: no way out

    # -- run -------------------------------------------------------------------------------

    def _closure(self, states: frozenset[int]) -> frozenset[int]:
        seen = set(states)
        todo = list(states)
        while todo:
            s = todo.pop()
            if self._states[s].pred is None:
                for t in self._states[s].out:
                    if t not in seen:
                        seen.add(t)
                        todo.append(t)
        return frozenset(seen)

    def _step(self, current: frozenset[int], c: str) -> frozenset[int]:
        key = (current, c)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        moved = frozenset(t for s in current if (p := self._states[s].pred) is not None and p(c)
                          for t in self._states[s].out)
        result = self._closure(moved)
        if len(self._cache) < _MAX_CACHED:
            self._cache[key] = result
        return result

    def match(self, text: str) -> bool:
        accept = len(self._states) - 1
        current = self._start
        for c in text:
            current = self._step(current, c)
            if not current:
                return False
        return accept in current


def _class_end(pattern: str, start: int) -> int | None:
    """Index of the `]` closing the class opened at `start`, None when unclosed (then `[` is literal)."""
    j = start + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":  # a leading `]` is a member, as in fnmatch
        j += 1
    end = pattern.find("]", j)
    return end if end != -1 else None


@lru_cache(maxsize=512)
def compile_glob(pattern: str, paths: bool = False) -> Glob:
    return Glob(pattern, paths)


def glob_match(text: str, pattern: str, paths: bool = False) -> bool:
    """Whether `text` matches `pattern`, in time linear in `text`."""
    return compile_glob(pattern, paths).match(text)
