"""Load a YAML document from an untrusted repository: bounded size and depth, no aliases.

Aliases are what make a 338-byte "billion laughs" document expand to gigabytes, so the event
stream is scanned first and the document refused before any object is built. The scan uses
libyaml when present (a 256 KB document takes milliseconds), PyYAML's pure parser otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

MAX_BYTES = 256 * 1024
MAX_DEPTH = 12
MAX_NODES = 50_000

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class YamlRefused(Exception):
    """The document is refused; `line` is 1-based, None when it has no position."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return self.message


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


class _Loader(_Base):
    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        # Scalars become ints, floats, dates: `2026-13-45` or a 5,000-digit int raise a
        # ValueError rather than a YAMLError, and it should still name its line.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            raise YamlRefused(_line(node.start_mark), f"not valid YAML: {exc}") from None


def _scan(text: str) -> None:
    """Refuse anchors, aliases, deep nesting and huge node counts from the events alone."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            raise YamlRefused(_line(event.start_mark),
                              f"YAML aliases (*{event.anchor}) are not allowed: write the value out")
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise YamlRefused(_line(event.start_mark),
                              f"YAML anchors (&{event.anchor}) are not allowed: write the value out")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlRefused(_line(event.start_mark), f"nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                raise YamlRefused(_line(event.start_mark), f"more than {MAX_NODES} values")


def check_size(text: str) -> None:
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise YamlRefused(text[:exc.start].count("\n") + 1, "not valid UTF-8 text") from None
    if size > MAX_BYTES:
        # Name the line where the cap is crossed (counting characters: close enough for a person).
        raise YamlRefused(text[:MAX_BYTES].count("\n") + 1,
                          f"the file is {size // 1024} KB: the limit is {MAX_BYTES // 1024} KB")


def load(text: str) -> tuple[Any, yaml.Node | None]:
    """The document's data and its node tree (for line numbers). Raises YamlRefused."""
    check_size(text)
    try:
        _scan(text)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise YamlRefused(_line(mark), f"not valid YAML: {problem}") from None
    except (ValueError, OverflowError, TypeError) as exc:  # a value no constructor call names
        raise YamlRefused(None, f"not valid YAML: {exc}") from None
    return data, node
