"""Issue 19's burst against `mainline demo`: how long until master and production agree again.

Plays what the issue's reporter did: after the demo's story, 20 commits (a harmless text file
each) pushed to `master` of `acme/webapp` on the demo's local GitHub, one `git push` each over
smart HTTP, within 2 seconds. Each push makes the stand-in send its `push` webhook to the bot, as
GitHub would. The script then polls the bot's API until master's head is live and `in_sync` is
true, and counts what must not happen: revert pull requests, rollbacks, and GitHub writes made
twice where one is expected (two bot deployments for one sha and environment, two check runs of
one name on one sha, a deployment status repeated as is, two revert pull requests).

Which demo: the one answering on --bot (default http://127.0.0.1:8000, its GitHub on --github,
default http://127.0.0.1:8100), read with the API token in MAINLINE_DEMO_API_TOKEN (start the
demo with that variable set to choose its read token) or --token. When no bot answers there, the
script starts its own `mainline demo` (in a temporary directory, with a read token it chooses),
waits for the story to finish, plays the burst(s), and stops that demo (SIGINT to the demo's
own process group; the demo stops what it started). It never touches a demo it did not start.

    .venv/bin/python bench/burst_sync.py [--pushes 20] [--within 2] [--repeat 1] [--timeout 300]

Last line: `burst: pushes=20 in_sync_after=Xs reverts=0 rollbacks=0 duplicates=0` (with --repeat,
the slowest time and the sums over every burst). Exit status 1 when master's head never went live
in sync within --timeout, or any revert, rollback or duplicate was seen.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
REPO = "acme/webapp"
SERVICE = "webapp"
GITHUB_TOKEN = "demo-token"  # the demo's bot token on its local GitHub (sandbox.demo.TOKEN)
JUDGED = {"rolling_back", "rolled_back", "reverting", "reverted"}


@dataclass
class Outcome:
    pushes: int
    pushed_in: float
    in_sync_after: float | None
    reverts: int
    rollbacks: int
    duplicates: list[str]

    def line(self, label: str = "burst") -> str:
        synced = f"{self.in_sync_after:.1f}s" if self.in_sync_after is not None else "never"
        return (f"{label}: pushes={self.pushes} in_sync_after={synced} reverts={self.reverts} "
                f"rollbacks={self.rollbacks} duplicates={len(self.duplicates)}")


class Demo:
    """The bot's API and its local GitHub's REST API, as a team's script reads them."""

    def __init__(self, bot: str, github: str, token: str | None):
        self.bot, self.github = bot.rstrip("/"), github.rstrip("/")
        self.api = requests.Session()
        if token:
            self.api.headers["Authorization"] = f"Bearer {token}"
        self.gh = requests.Session()
        self.gh.headers.update({"Authorization": f"token {GITHUB_TOKEN}", "Accept": "application/vnd.github+json"})

    def up(self) -> bool:
        try:
            return requests.get(f"{self.bot}/healthz", timeout=2).ok and requests.get(
                f"{self.github}/rate_limit", timeout=2).ok
        except requests.RequestException:
            return False

    def get(self, path: str):
        response = self.api.get(self.bot + path, timeout=10)
        if response.status_code == 401:
            sys.exit("the bot asks for a token: set MAINLINE_DEMO_API_TOKEN (the demo's read token) or --token")
        response.raise_for_status()
        return response.json()

    def gh_get(self, path: str):
        response = self.gh.get(self.github + path, timeout=10)
        response.raise_for_status()
        return response.json()

    def status(self) -> dict:
        return next(s for s in self.get("/api/services") if s["service"] == SERVICE
                    and s["environment"] == "production")

    def deploys(self) -> list[dict]:
        return self.get(f"/api/deploys?service={SERVICE}&limit=200")

    def master(self) -> str:
        return self.gh_get(f"/repos/{REPO}/branches/master")["commit"]["sha"]

    def in_sync(self) -> bool:
        status, head = self.status(), self.master()
        return bool(status["in_sync"] and status["head"] == head and (status["live"] or {}).get("sha") == head
                    and not status["queue"])

    def revert_pulls(self) -> set[int]:
        pulls = self.gh_get(f"/repos/{REPO}/pulls?state=all&per_page=100")
        return {p["number"] for p in pulls if p["title"].startswith("Revert")}


def start_demo(workdir: Path, token: str) -> subprocess.Popen:
    env = dict(os.environ, MAINLINE_DEMO_API_TOKEN=token, PYTHONUNBUFFERED="1")
    with open(workdir / "demo.log", "wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "demo"], cwd=workdir, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait_for(predicate, timeout: float, interval: float = 0.25) -> float | None:
    """Seconds until `predicate()` held, or None."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            if predicate():
                return time.monotonic() - start
        except (requests.RequestException, StopIteration):
            pass
        time.sleep(interval)
    return None


def git(*args: str, cwd: Path) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="Octo Cat", GIT_AUTHOR_EMAIL="octocat@example.com",
               GIT_COMMITTER_NAME="Octo Cat", GIT_COMMITTER_EMAIL="octocat@example.com", GIT_TERMINAL_PROMPT="0")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def prepare(demo: Demo, work: Path, pushes: int, round_no: int) -> list[str]:
    """Clone master and make the burst's commits locally, so the timed part is the pushes alone."""
    clone = work / f"clone-{round_no}"
    git("clone", "--quiet", "--branch", "master", f"{demo.github}/{REPO}.git", str(clone), cwd=work)
    shas = []
    for i in range(pushes):
        (clone / "burst").mkdir(exist_ok=True)
        (clone / "burst" / f"{round_no}-{i:03d}.txt").write_text(f"burst {round_no}.{i}\n")
        git("add", "-A", cwd=clone)
        git("commit", "--quiet", "-m", f"burst {i}", cwd=clone)
        shas.append(git("rev-parse", "HEAD", cwd=clone))
    return shas


def duplicate_writes(demo: Demo, shas: list[str]) -> list[str]:
    found = []
    for sha in shas:
        deployments = demo.gh_get(f"/repos/{REPO}/deployments?sha={sha}&per_page=100")
        per_env = Counter(d["environment"] for d in deployments if d["creator"]["login"] == "mainline[bot]")
        found += [f"{sha[:12]}: {n} deployments to {env}" for env, n in per_env.items() if n > 1]
        for d in deployments:
            states = [(s["state"], s.get("description")) for s in
                      demo.gh_get(f"/repos/{REPO}/deployments/{d['id']}/statuses?per_page=100")]
            found += [f"{sha[:12]}: deployment status {a[0]} repeated" for a, b in pairwise(states) if a == b]
        runs = demo.gh_get(f"/repos/{REPO}/commits/{sha}/check-runs?per_page=100")["check_runs"]
        found += [f"{sha[:12]}: {n} check runs {name}" for name, n in Counter(r["name"] for r in runs).items() if n > 1]
    return found


def burst(demo: Demo, work: Path, pushes: int, within: float, timeout: float, round_no: int) -> Outcome:
    shas = prepare(demo, work, pushes, round_no)
    clone = work / f"clone-{round_no}"
    reverts_before = demo.revert_pulls()
    seen_before = {d["id"] for d in demo.deploys()}
    started = time.monotonic()
    for sha in shas:  # one push each, as a busy team's merges land
        git("push", "--quiet", "origin", f"{sha}:refs/heads/master", cwd=clone)
    pushed_in = time.monotonic() - started
    if pushed_in > within:
        print(f"  note: the {pushes} pushes took {pushed_in:.2f}s, over the {within:g}s asked for", flush=True)
    synced = wait_for(demo.in_sync, timeout)
    in_sync_after = None if synced is None else time.monotonic() - started
    new = [d for d in demo.deploys() if d["id"] not in seen_before]
    rollbacks = sum(1 for d in new if d["state"] in JUDGED or any(e["kind"] in JUDGED for e in d.get("events", [])))
    head = demo.master()
    outcome = Outcome(pushes, pushed_in, in_sync_after, len(demo.revert_pulls() - reverts_before), rollbacks,
                      duplicate_writes(demo, list(dict.fromkeys([*shas, head]))))
    rolled = [d["sha"][:12] for d in new if any(e["kind"] == "rolling_out" for e in d.get("events", []))]
    print(f"  pushed in {pushed_in:.2f}s; deploys recorded: {len(new)}; rolled out: {rolled}; "
          f"head {head[:12]}", flush=True)
    for line in outcome.duplicates:
        print(f"  duplicate: {line}", flush=True)
    return outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bot", default="http://127.0.0.1:8000")
    parser.add_argument("--github", default="http://127.0.0.1:8100")
    parser.add_argument("--token", default=os.environ.get("MAINLINE_DEMO_API_TOKEN"))
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--within", type=float, default=2.0, help="seconds the pushes should fit in")
    parser.add_argument("--repeat", type=int, default=1, help="bursts in a row (the issue's trigger is a race)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for in_sync per burst")
    args = parser.parse_args()

    own = None
    with tempfile.TemporaryDirectory(prefix="burst-sync-") as tmp:
        work = Path(tmp)
        demo = Demo(args.bot, args.github, args.token)
        try:
            if not demo.up():
                token = "mlt_" + secrets.token_urlsafe(32)
                print(f"no demo on {args.bot}: starting `mainline demo` (log: {work / 'demo.log'})", flush=True)
                own = start_demo(work, token)
                demo = Demo(args.bot, args.github, token)
                if wait_for(lambda: own.poll() is None and b"serving until interrupted" in
                            (work / "demo.log").read_bytes(), 420, 1.0) is None:
                    print((work / "demo.log").read_text()[-3000:])
                    sys.exit("the demo did not finish its story")
            if wait_for(demo.in_sync, 120) is None:
                sys.exit(f"the demo is not in sync before the burst: {demo.status()}")
            outcomes = []
            for round_no in range(args.repeat):
                outcome = burst(demo, work, args.pushes, args.within, args.timeout, round_no)
                outcomes.append(outcome)
                if args.repeat > 1:
                    print(outcome.line(f"burst {round_no + 1}"), flush=True)
        finally:
            if own is not None and own.poll() is None:
                os.killpg(own.pid, signal.SIGINT)  # the demo's own group: it stops what it started
                try:
                    own.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(own.pid, signal.SIGKILL)
                    own.wait()
    slowest = None if any(o.in_sync_after is None for o in outcomes) else max(o.in_sync_after for o in outcomes)
    total = Outcome(args.pushes, max(o.pushed_in for o in outcomes), slowest, sum(o.reverts for o in outcomes),
                    sum(o.rollbacks for o in outcomes), [d for o in outcomes for d in o.duplicates])
    print(total.line(), flush=True)
    failed = slowest is None or total.reverts or total.rollbacks or total.duplicates
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
