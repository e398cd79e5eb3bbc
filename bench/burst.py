"""Issue 13's burst: 100 merges across 20 services in 60 s, 30% of the deliveries sent twice,
through 2 web processes (gunicorn) and 4 `mainline worker`s on real PostgreSQL + Redis; then the
same load on the embedded defaults (SQLite files, one worker), to show where they stop.

The app: the repository's sample app (busybox httpd in a FROM-scratch image, /health by CGI),
1 replica behind its own HAProxy, bake 1s, so 100 merges finish in minutes on 2 cores. Each merge
is a real pull request opened and merged on the GitHub stand-in (which sends `push` and
`pull_request` closed); a relay between the stand-in and the bot posts 30% of the deliveries a
second time with the same X-GitHub-Delivery, as GitHub's redelivery does.

Figures: merge → live (the first live release containing the merge) p50/p99, queue wait (a
deploy's created_at → started_at), the most PostgreSQL connections seen at once (pg_stat_activity,
sampled every 0.5 s), peak memory (VmHWM) per worker and web process. Counted on the stand-in:
a duplicate is a second bot deployment, a second check run of one name, a second comment or a
second revert pull request for one sha. `lost` = a merged sha with no ended deploy (live,
superseded, reverted, failed) and not contained in the final live release.

    .venv/bin/python bench/burst.py [--merges 100] [--services 20] [--within 60] [--twice 0.3]
                                    [--skip-sqlite] [--timeout 600]

Last line: `burst: merges=N live=N duplicates=0 lost=0 p50=Xs p99=Ys` (the PostgreSQL run).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

from outcomes import duplicates
from rig import ENDED, Rig, RigError, iso_seconds, peak_rss_mb, wait_until


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Sampler:
    """The most PostgreSQL connections seen at once, and each bot process's peak memory."""

    def __init__(self, rig: Rig):
        self.rig = rig
        self.max_connections = 0
        self.stop = threading.Event()
        self.peaks: dict[int, float] = {}
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            if self.rig.pg is not None:
                with contextlib.suppress(Exception):
                    self.max_connections = max(self.max_connections, self.rig.pg.connections())
            self.record()

    def record(self) -> None:
        bot = self.rig.bot
        if bot is None:
            return
        # Each worker process; the web server's master and its gunicorn workers (not git, haproxy, ...).
        pids = [w.pid for w in bot.workers] + [pid for web in bot.webs if web for pid in family(web.pid)]
        for pid in pids:
            peak = peak_rss_mb(pid) if is_bot(pid) else None
            if peak is not None:
                self.peaks[pid] = max(self.peaks.get(pid, 0.0), peak)


def is_bot(pid: int) -> bool:
    try:
        return b"bot.cli" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def family(pid: int) -> list[int]:
    """`pid` and its children (gunicorn's workers), from /proc."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in task.read_text().split()]
    return out


def live_times(deploys: list[dict]) -> dict[str, float]:
    """sha → when its deploy went live (epoch seconds)."""
    out = {}
    for d in deploys:
        for e in d.get("events", []):
            if e["kind"] == "live":
                out.setdefault(d["sha"], iso_seconds(e["at"]) or 0.0)
    return out


def settled(rig: Rig) -> bool:
    for svc in rig.services:
        by_sha = {d["sha"]: d["state"] for d in rig.deploys(svc)}
        head = svc.merges[-1][0] if svc.merges else None
        if head is None:
            continue
        if by_sha.get(head) not in ENDED:
            return False
        if any(by_sha.get(sha) not in ENDED | {None} for sha, *_ in svc.merges):
            return False
    return True


def play(label: str, rig: Rig, web: int, workers: int, merges: int, within: float, timeout: float) -> dict:
    print(f"== {label}: {len(rig.services)} services, {web} web process(es) (`mainline serve`, one gunicorn "
          f"worker each, behind the relay), {workers} worker(s), "
          f"{'PostgreSQL + Redis' if rig.pg else 'SQLite'}", flush=True)
    assert rig.bot is not None
    rig.bot.start_web(web)
    for _ in range(workers):
        rig.bot.start_worker()
    sampler = Sampler(rig)
    # Warm-up (not timed): the first release of every service, so the burst is about changes.
    started = time.monotonic()
    for svc in rig.services:
        rig.merge(svc, "v1", 0)
    if not wait_until(lambda: settled(rig), timeout, 1.0):
        raise RigError(f"{label}: the warm-up releases did not settle in {timeout:.0f}s")
    print(f"  warm-up: {len(rig.services)} first releases live in {time.monotonic() - started:.1f}s", flush=True)
    warm = {svc.name: len(svc.merges) for svc in rig.services}

    started = time.monotonic()
    for i in range(merges):
        svc = rig.services[i % len(rig.services)]
        rig.merge(svc, f"v{2 + i // len(rig.services)}", i + 1)
        pause = started + within * (i + 1) / merges - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    merged_in = time.monotonic() - started
    ok = wait_until(lambda: settled(rig), timeout, 1.0)
    drained = time.monotonic() - started
    rig.github.flush_webhooks(30)
    sampler.stop.set()
    sampler.thread.join()
    sampler.record()

    latencies, waits, lost, live, states = [], [], [], 0, Counter()
    for svc in rig.services:
        deploys = rig.deploys(svc)
        lives = live_times(deploys)
        by_sha = {d["sha"]: d for d in deploys}
        order = [sha for sha, *_ in svc.merges]
        final = next((sha for sha in reversed(order) if by_sha.get(sha, {}).get("state") == "live"), None)
        for idx, (sha, at, _) in enumerate(svc.merges[warm[svc.name]:], start=warm[svc.name]):
            state = by_sha.get(sha, {}).get("state")
            states[state or "none"] += 1
            went = [lives[s] for s in order[idx:] if s in lives]
            if went and state in ("live", "superseded"):
                live += 1
                latencies.append(min(went) - at)
            elif state not in ENDED and not (final and order.index(final) >= idx):
                lost.append(f"{svc.name} {sha[:10]}: {state or 'no deploy'}")
        for d in deploys:
            a, b = iso_seconds(d.get("created_at")), iso_seconds(d.get("started_at"))
            if a and b and d["sha"] not in [sha for sha, *_ in svc.merges[:warm[svc.name]]]:
                waits.append(b - a)
    dups = [line for svc in rig.services for line in duplicates(rig, svc)]
    inbox_left = len(rig.api("/api/services"))  # the API answers: web is alive
    worker_peaks = [f"{sampler.peaks.get(w.pid, 0):.0f}" for w in rig.bot.workers]
    others = sorted(v for pid, v in sampler.peaks.items() if pid not in {w.pid for w in rig.bot.workers})
    print(f"  merged {merges} in {merged_in:.1f}s ({rig.relay.doubled}/{rig.relay.sent} deliveries sent twice); "
          f"settled={'yes' if ok else 'NO'} after {drained:.1f}s; end states {dict(states)}", flush=True)
    print(f"  merge → live: p50 {percentile(latencies, .5):.1f}s p99 {percentile(latencies, .99):.1f}s "
          f"max {max(latencies, default=float('nan')):.1f}s over {len(latencies)} merges", flush=True)
    print(f"  queue wait (created → started): p50 {percentile(waits, .5):.2f}s p99 {percentile(waits, .99):.2f}s "
          f"over {len(waits)} deploys", flush=True)
    conns = f"{sampler.max_connections}" if rig.pg else "n/a (SQLite files)"
    print(f"  database connections at most: {conns}; services reported: {inbox_left}", flush=True)
    print(f"  peak memory per worker (MB): {', '.join(worker_peaks)}; web processes (MB): "
          f"{', '.join(f'{v:.0f}' for v in others)}", flush=True)
    for line in [*dups, *lost][:20]:
        print(f"  ! {line}", flush=True)
    return {"merges": merges, "live": live, "duplicates": len(dups), "lost": len(lost), "settled": ok,
            "p50": percentile(latencies, .5), "p99": percentile(latencies, .99)}


def run(label: str, scale: bool, args, web: int, workers: int) -> dict:
    rig = Rig(args.services, scale=scale, twice=args.twice, prefix="burst" + ("p" if scale else "s"), webs=web,
              faults=False,
              extra_env={"MAINLINE_PUBLIC_READ": "true", "MAINLINE_WORKER_THREADS": str(args.threads)})
    try:
        return play(label, rig, web, workers, args.merges, args.within, args.timeout)
    finally:
        rig.stop()


def line(result: dict) -> str:
    return (f"burst: merges={result['merges']} live={result['live']} duplicates={result['duplicates']} "
            f"lost={result['lost']} p50={result['p50']:.1f}s p99={result['p99']:.1f}s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--merges", type=int, default=100)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--within", type=float, default=60.0)
    parser.add_argument("--twice", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=2, help="queue threads per worker")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    scale = run("PostgreSQL + Redis", True, args, web=2, workers=4)
    if not args.skip_sqlite:
        embedded = run("embedded defaults", False, args, web=1, workers=1)
        print("sqlite " + line(embedded), flush=True)
    print(line(scale), flush=True)
    good = scale["settled"] and scale["duplicates"] == 0 and scale["lost"] == 0 and scale["live"] == scale["merges"]
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
