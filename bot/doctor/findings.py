"""One line of `mainline doctor`: what was checked, ok / FAIL / skipped, and the fix."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

log = logging.getLogger("mainline.doctor")


@dataclass(frozen=True)
class Finding:
    area: str  # github | slack | registry | docker | haproxy | aws | database
    what: str
    status: str  # ok | fail | skip
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {"ok": "ok  ", "fail": "FAIL", "skip": "--  "}[self.status]
        text = f"{mark} {self.area}: {self.what}: {self.detail}"
        return text + (f" -> fix: {self.fix}" if self.fix and self.status == "fail" else "")


def ok(area: str, what: str, detail: str) -> Finding:
    return Finding(area, what, "ok", detail)


def fail(area: str, what: str, detail: str, fix: str) -> Finding:
    return Finding(area, what, "fail", detail, fix)


def skip(area: str, what: str, detail: str) -> Finding:
    return Finding(area, what, "skip", detail)


Check = Callable[[], Iterable[Finding]]


def guarded(area: str, what: str, check: Check, scrub: Callable[[str], str], fix: str) -> Iterator[Finding]:
    """Run one check; an error it did not expect is a failing line (scrubbed), never a traceback."""
    try:
        yield from check()
    except Exception as exc:  # each check stands alone: one broken part must not hide the others
        log.debug("doctor check %s/%s raised", area, what, exc_info=True)
        yield fail(area, what, scrub(f"{type(exc).__name__}: {exc}")[:400], fix)
