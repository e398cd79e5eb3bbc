"""What `reverting` reverts after a bisection, and what everyone is told.

The plan travels as the data of the `culprit` event that moves the deploy from `bisecting` to
`reverting`: no new column, and a person reading the deploy's log sees the same facts the
engine acts on. When reverting the culprit alone would conflict with later commits of the same
release, the later commits that touch the conflicting files are reverted with it, and the plan
says which and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.commit_messages import pull_numbers_in
from bot.culprit.search import Outcome, Round
from bot.domain import DeployState
from bot.engine.transitions import Transition

S = DeployState
KIND = "culprit"


@dataclass(frozen=True)
class RevertPlan:
    """Read back by `reverting`: which commits, the revert's reason and evidence, the story."""

    commits: list[str]  # newest first
    message: str
    evidence: str
    culprit: str | None = None
    innocent_pulls: tuple[int, ...] = ()
    story: list[str] = field(default_factory=list)


def pulls_of(s: Any, sha: str) -> list[int]:
    """The pull requests a commit came from: as its own push or merge told them (never the failed
    release's deploy, which carries them all), else as its message names them."""
    for deploy in s.ctx.store.deploys(s.service.id, s.deploy.environment, limit=200):
        if deploy.sha == sha and deploy.id != s.deploy.id and deploy.pull_numbers:
            return sorted(deploy.pull_numbers)
    return sorted(pull_numbers_in([s.ctx.w.git.commit_message(s.service.clone_url, sha)]))


def _named(sha: str, pulls: list[int]) -> str:
    return f"{sha[:12]}" + (f" ({', '.join(f'#{n}' for n in pulls)})" if pulls else "")


def _round_lines(rounds: list[Round] | list[dict]) -> list[str]:
    lines = []
    for r in rounds:
        d = r if isinstance(r, dict) else {**r.event(), "reason": r.reason, "confirm": r.confirm}
        what = "confirmed" if d.get("confirm") else "judged"
        lines.append(f"round {d['round']}: {d['sha'][:12]} {what} {d['verdict']}"
                     + (f" ({d['reason']})" if d.get("reason") else ""))
    return lines


def _rounds_data(rounds) -> list[dict]:
    return [{**r.event(), "reason": r.reason[:300], "confirm": r.confirm} for r in rounds]


def conflict_closure(s: Any, commits: list[str], culprit: str) -> tuple[list[str], list[dict]]:
    """The commits to revert, newest first: the culprit, and the later commits of the release
    whose changes the revert would conflict with (files they touch), until it applies cleanly."""
    git, clone = s.ctx.w.git, s.service.clone_url
    at = commits.index(culprit)
    parent = {sha: commits[i - 1] if i else s.deploy.previous_sha for i, sha in enumerate(commits)}
    revert, also = [culprit], []
    for _ in range(len(commits) - at):
        newest_first = sorted(revert, key=commits.index, reverse=True)
        files = git.revert_conflicts(clone, s.service.branch, newest_first)
        if not files:
            break
        touching = [c for c in commits[at + 1:] if c not in revert
                    and set(files) & set(git.changed_paths(clone, parent[c], c))]
        if not touching:
            break  # reverting fails as before: the service is locked, and a person finishes it
        for sha in touching:
            also.append({"sha": sha, "files": sorted(set(files) & set(git.changed_paths(clone, parent[sha], sha)))})
        revert += touching
    return sorted(revert, key=commits.index, reverse=True), also


def culprit_plan(s: Any, outcome: Outcome, builds: int = 0, closure: bool = True) -> Transition:
    """`closure`: also revert the later commits the culprit's revert would conflict with."""
    commits, culprit = outcome.commits, outcome.culprit
    assert culprit is not None
    revert, also = conflict_closure(s, commits, culprit) if closure else ([culprit], [])
    pulls = {sha: pulls_of(s, sha) for sha in commits}
    for entry in also:
        entry["pulls"] = pulls[entry["sha"]]
    innocent = [c for c in commits if c not in revert]
    culprit_pulls = pulls[culprit]
    also_pulls = sorted({n for a in also for n in pulls[a["sha"]]})
    innocent_pulls = sorted({n for c in innocent for n in pulls[c]})
    name = _named(culprit, culprit_pulls)
    message = (f"bisected the {len(commits)} commits of the release in {outcome.search_rounds} round(s): "
               f"{name} broke it; reverting only it")
    why_also = [f"{_named(a['sha'], pulls[a['sha']])} is reverted too: reverting {culprit[:12]} alone conflicts with "
                f"it in {', '.join(a['files'])}" for a in also]
    if why_also:
        message += "; " + "; ".join(why_also)
    story = [f"release {s.deploy.sha[:12]} of {len(commits)} commits failed: {s.deploy.reason}",
             f"production rolled back to {(s.deploy.previous_sha or '')[:12]}",
             *_round_lines(outcome.rounds), f"culprit: {name}, reverted", *why_also]
    if innocent:
        story.append("held back, now shipping without it: "
                     + ", ".join(_named(c, pulls[c]) for c in reversed(innocent)))
    return Transition(S.REVERTING, message, kind=KIND, fields={"pull_numbers": sorted(set(culprit_pulls + also_pulls))},
                      data={"culprit": culprit, "revert": revert, "also": also, "innocent": innocent,
                            "culprit_pulls": culprit_pulls, "innocent_pulls": innocent_pulls,
                            "rounds": _rounds_data(outcome.rounds), "builds": builds,
                            "seconds": round(outcome.seconds, 3), "story": story})


def batch_plan(s: Any, commits: list[str], why: str, rounds: list[Round] | None = None,
               builds: int = 0) -> Transition:
    """The search found no one to blame: the whole release is reverted, as before, saying why."""
    story = [f"release {s.deploy.sha[:12]} of {len(commits)} commits failed: {s.deploy.reason}",
             *_round_lines(rounds or []), f"{why}: the whole release is reverted"]
    return Transition(S.REVERTING, f"{why}; reverting the whole release ({len(commits)} commits)", kind=KIND,
                      data={"culprit": None, "stopped": why, "revert": list(reversed(commits)),
                            "rounds": _rounds_data(rounds or []), "builds": builds, "story": story})


def revert_plan(s: Any) -> RevertPlan | None:
    """The plan the bisection left for this deploy, or None (no bisection: revert it all)."""
    found = [e for e in s.ctx.store.events(s.deploy.id) if e.kind == KIND]
    if not found:
        return None
    data = found[-1].data or {}
    deploy = s.deploy
    evidence = "\n".join(f"- {line}" for line in _round_lines(data.get("rounds") or []))
    if data.get("culprit") is None:
        message = (f"Mainline rolled back {deploy.sha[:12]} in {deploy.environment}: {deploy.reason or 'bad release'}; "
                   f"{data.get('stopped')}, so the whole release is reverted")
        return RevertPlan(list(data["revert"]), message, evidence, story=list(data.get("story") or []))
    innocent = data.get("innocent_pulls") or []
    message = (f"this PR broke production and was reverted: Mainline bisected the release {deploy.sha[:12]} "
               f"that failed in {deploy.environment} ({deploy.reason or 'bad release'}) and found "
               f"{data['culprit'][:12]}." + (" The other PRs of the release ("
                                             + ", ".join(f"#{n}" for n in innocent) + ") go live without it."
                                             if innocent else ""))
    for also in data.get("also") or []:
        message += (f" {also['sha'][:12]} is reverted with it: reverting the culprit alone conflicts with it in "
                    f"{', '.join(also['files'])}.")
    return RevertPlan(list(data["revert"]), message, evidence, culprit=data["culprit"],
                      innocent_pulls=tuple(innocent), story=list(data.get("story") or []))
