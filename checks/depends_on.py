"""Gate: what this deploy depends on is live in production first; and the order services go in."""

from __future__ import annotations

import re

from bot.domain import GateResult
from checks.inputs import DependencyState, Ref

GATE = "depends-on"
# Each `Depends-On:` entry costs GitHub calls on every gate pass; a PR body or commit message is
# text anyone can write, so past this many entries none are looked up and the deploy waits.
MAX_DEPENDS_ON = 20
TOO_MANY = "Depends-On"  # the DependencyState name that stands for an over-long list

# `Depends-On: owner/repo#123`, as in a PR body or commit message trailer; several may be listed
# on one line, separated by commas or spaces.
_LINE = re.compile(r"^[ \t>*-]*depends[- ]on[ \t]*:(?P<refs>.*)$", re.IGNORECASE | re.MULTILINE)
_REF = re.compile(r"(?<![\w.-])(?P<repo>[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9._-]+)#(?P<number>\d+)\b")


class DependencyCycleError(ValueError):
    """Services depend on each other in a circle, so no order deploys them all."""

    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__("services depend on each other in a cycle: " + " -> ".join(cycle))


def parse_depends_on(text: str, limit: int = MAX_DEPENDS_ON + 1) -> list[Ref]:
    """The `Depends-On: owner/repo#N` references in a PR body or commit message, in order, once
    each; reading stops after `limit` of them (one past the cap, enough to tell it was passed)."""
    refs: list[Ref] = []
    seen: set[Ref] = set()
    for line in _LINE.finditer(text or ""):
        for match in _REF.finditer(line.group("refs")):
            ref = Ref(match.group("repo"), int(match.group("number")))
            if ref not in seen:
                seen.add(ref)
                refs.append(ref)
                if len(refs) >= limit:
                    return refs
    return refs


def too_many_dependencies(count: int) -> DependencyState:
    """What stands in for a `Depends-On:` list longer than the cap: not met, and why."""
    return DependencyState(TOO_MANY, False, f"more than {MAX_DEPENDS_ON} Depends-On entries ({count} or more); "
                                            f"Mainline checks at most {MAX_DEPENDS_ON}, so none were looked up. "
                                            f"List at most {MAX_DEPENDS_ON}, or deploy by hand with --force")


def depends_on_gate(deps: list[DependencyState]) -> GateResult:
    """Pass when every dependency is live in production; else wait, naming each that is not."""
    too_many = next((d for d in deps if d.name == TOO_MANY and not d.live), None)
    if too_many is not None:
        return GateResult.wait(GATE, too_many.detail)
    missing = [d for d in deps if not d.live]
    if not missing:
        live = "dependencies live: " + ", ".join(str(d.name) for d in deps) if deps else "no dependencies"
        return GateResult.ok(GATE, live)
    parts = [f"{d.name} ({d.detail})" if d.detail else str(d.name) for d in missing]
    return GateResult.wait(GATE, "waiting for these to be live in production first: " + ", ".join(parts))


def deploy_order(services: dict[str, list[str]]) -> list[str]:
    """Services ordered so each comes after what it depends on; ties keep the given order.

    `services` maps a service to its `depends_on`. Dependencies not in the map are taken as
    already deployed. Raises DependencyCycleError naming the cycle."""
    order: list[str] = []
    state: dict[str, str] = {}  # "visiting" | "done"

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise DependencyCycleError([*path[path.index(name):], name])
        state[name] = "visiting"
        for dep in services.get(name, []):
            if dep in services:
                visit(dep, [*path, name])
        state[name] = "done"
        order.append(name)

    for name in services:
        visit(name, [])
    return order
