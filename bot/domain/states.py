"""The deploy state machine: every state and every allowed move, in one place. The engine's
`apply()` refuses any move not listed here, and the README's diagram is generated from it."""

from __future__ import annotations

import enum


class DeployState(enum.StrEnum):
    QUEUED = "queued"
    GATING = "gating"
    BUILDING = "building"
    ROLLING_OUT = "rolling_out"
    VERIFYING = "verifying"
    LIVE = "live"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    # A failed release of several commits: finding the one that broke it (bot/culprit).
    BISECTING = "bisecting"
    REVERTING = "reverting"
    REVERTED = "reverted"
    FAILED = "failed"
    # A queued sha whose commits went live inside a newer deploy (coalescing).
    SUPERSEDED = "superseded"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def in_flight(self) -> bool:
        return not self.terminal and self is not DeployState.QUEUED


S = DeployState

TERMINAL_STATES = frozenset({S.LIVE, S.REVERTED, S.FAILED, S.SUPERSEDED})

# The states a driver is working on (each environment has at most one at a time).
IN_FLIGHT: tuple[str, ...] = tuple(s.value for s in DeployState if s.in_flight)

# Every move a deploy may make, with why. FAILED is reachable from every step that can keep
# raising (the driver gives up after a bound); ROLLING_BACK and REVERTING are never given up on
# by the bound, but fail when a person must look (no verified rollback, a revert conflict).
TRANSITIONS: dict[DeployState, dict[DeployState, str]] = {
    S.QUEUED: {
        S.QUEUED: "waits on a gate",
        S.GATING: "every gate passes",
        S.SUPERSEDED: "already live inside a newer release",
        S.FAILED: "a gate blocks it",
    },
    S.GATING: {S.BUILDING: "build", S.FAILED: "kept failing"},
    S.BUILDING: {
        S.ROLLING_OUT: "image built, checks pass",
        S.LIVE: "same tree as the live release",
        S.FAILED: "build or repo checks failed",
    },
    S.ROLLING_OUT: {
        S.VERIFYING: "every replica serves",
        S.ROLLING_BACK: "rollout failed, or the infrastructure kept failing",
        S.FAILED: "kept failing, nothing to restore",
    },
    S.VERIFYING: {
        S.LIVE: "healthy through the bake",
        S.ROLLING_BACK: "unhealthy, or the infrastructure kept failing",
        S.FAILED: "kept failing, nothing to restore",
    },
    S.ROLLING_BACK: {
        S.ROLLED_BACK: "the previous release verified",
        S.FAILED: "nothing to restore, rollback refused or unverified",
    },
    S.ROLLED_BACK: {
        S.REVERTING: "revert the bad commits",
        S.BISECTING: "several commits: find the one that broke it",
        S.FAILED: "not judged, or not the production branch",
    },
    # Never fails: a search that cannot finish reverts the whole release, as before (or, when a
    # person asked, leaves it reverted).
    S.BISECTING: {
        S.REVERTING: "revert the culprit, or the whole release when the search stops",
        S.REVERTED: "a person's search ends: the commits that did not break it are put back",
    },
    S.REVERTING: {
        S.REVERTED: "reverted on the branch",
        S.FAILED: "the revert conflicts, so the service is locked",
    },
    # A person rolls a live release back; the watchdog queues a head recorded live that no
    # longer runs.
    S.LIVE: {S.ROLLING_BACK: "a person rolls it back", S.QUEUED: "the watchdog queues it again"},
    # A person asks which commit of a release reverted in full broke it (bot/culprit/manual.py).
    S.REVERTED: {S.BISECTING: "a person asks which commit broke it"},
    # A release that failed but still serves (its automatic rollback was refused, e.g. past a
    # contract migration) is rolled back by a person; a failed sha may be asked for again.
    S.FAILED: {S.ROLLING_BACK: "a person rolls it back", S.QUEUED: "asked for again"},
    S.SUPERSEDED: {S.QUEUED: "asked for again"},
}


def can_transition(src: DeployState, dst: DeployState) -> bool:
    return dst in TRANSITIONS[src]


def mermaid() -> str:
    """The state diagram as Mermaid source, as the README shows it (a test keeps them equal)."""
    lines = ["stateDiagram-v2", f"    [*] --> {S.QUEUED.value}"]
    for src, moves in TRANSITIONS.items():
        for dst, why in moves.items():
            if dst is not src:
                lines.append(f"    {src.value} --> {dst.value}: {why}")
    lines += [f"    {s.value} --> [*]" for s in DeployState if s.terminal]
    return "\n".join(lines) + "\n"
