"""Issue 12's culprit finding: for releases of 2, 4 and 8 PRs with the bad PR at each position,
the search rounds (⌈log2 N⌉ at most), the confirmation rounds, the candidate images built, and the
time from the rollback to the culprit.

The grid runs on the engine over the in-memory fakes (tests/engine), where a trial takes no time:
its time column is modelled as trials x the seconds one trial took on real parts. `--real` first
plays `mainline demo --story batch` once on real Docker, HAProxy and git (three PRs, the middle
one bad) and measures, from the deploy's event log, the time from `rolled_back` to `culprit` and
the seconds per trial that the model uses.

    .venv/bin/python bench/culprit.py [--real] [--trial-seconds 6]

Last line: `culprit: releases=N found=N max_rounds_over_log2=0 trial_seconds=X`.
"""

from __future__ import annotations

import argparse
import math
import socket
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.engine.test_culprit import batch, plan, rounds
from tests.engine.world import World


def grid(trial_seconds: float) -> tuple[int, int, int]:
    """Print one row per (size, position); return (releases, culprits found, rows over ⌈log2 N⌉)."""
    print(f"{'PRs':>3} {'bad':>3} {'search':>6} {'confirm':>7} {'log2':>4} {'builds':>6} {'model s':>7} "
          f"{'engine ms':>9}  culprit")
    releases = found = over = 0
    for n in (2, 4, 8):
        for bad in range(n):
            with tempfile.TemporaryDirectory() as tmp:
                w = World(Path(tmp))
                shas = batch(w, n, bad)
                w.drive()
                data, done = plan(w, shas[-1]), rounds(w, shas[-1])
            search = sum(1 for r in done if not r["confirm"])
            confirm = len(done) - search
            bound = math.ceil(math.log2(n))
            releases += 1
            found += data.get("culprit") == shas[bad]
            over += search > bound
            print(f"{n:>3} {bad + 1:>3} {search:>6} {confirm:>7} {bound:>4} {data.get('builds', 0):>6} "
                  f"{len(done) * trial_seconds:>7.0f} {data.get('seconds', 0) * 1000:>9.1f}  "
                  f"{'ok' if data.get('culprit') == shas[bad] else 'MISSED: ' + str(data.get('stopped'))}")
    return releases, found, over


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def real_run() -> float:
    """Play the batch story once; print its figures; return the seconds one trial took."""
    from sandbox.demo import DemoPorts
    from sandbox.demo_batch import BatchDemo
    from sandbox.demo_setup import SERVICE

    ports = DemoPorts(bot=free_port(), lb=free_port(), github=free_port(), slack=free_port())
    with tempfile.TemporaryDirectory() as tmp:
        demo = BatchDemo(ports, Path(tmp) / "demo")
        try:
            demo.start()
            demo.play()
            deploys = demo._get(f"/api/deploys?service={SERVICE}&limit=20") or []
        finally:
            demo.stop()
    bad = next(d for d in deploys if any(e["kind"] == "culprit" for e in d["events"]))
    at = {e["kind"]: datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in bad["events"]}
    trials = [e for e in bad["events"] if e["kind"] == "bisect"]
    plan_data = next(e["data"] for e in bad["events"] if e["kind"] == "culprit")
    seconds = (at["culprit"] - at["rolled_back"]).total_seconds()
    per_trial = seconds / max(len(trials), 1)
    print(f"real (Docker + HAProxy + git, 3 PRs, the 2nd bad): rollback → culprit {seconds:.1f}s, "
          f"{sum(1 for t in trials if not t['data'].get('confirm'))} search + "
          f"{sum(1 for t in trials if t['data'].get('confirm'))} confirmation rounds, "
          f"{plan_data.get('builds')} candidate image(s) built, {per_trial:.1f}s per trial")
    return per_trial


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", action="store_true", help="also play the batch story once on real parts")
    parser.add_argument("--trial-seconds", type=float, default=6.0,
                        help="seconds per trial for the model column (taken from --real when given)")
    args = parser.parse_args()
    per_trial = real_run() if args.real else args.trial_seconds
    releases, found, over = grid(per_trial)
    print(f"culprit: releases={releases} found={found} max_rounds_over_log2={over} trial_seconds={per_trial:.1f}")
    return 0 if found == releases and not over else 1


if __name__ == "__main__":
    sys.exit(main())
