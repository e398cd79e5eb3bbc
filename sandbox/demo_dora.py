"""The demo's last act: DORA's four keys for production as GET /api/dora serves them, printed and
checked against the story just played (the releases that went live, the bad one over all that
went out, a restore that took time)."""

from __future__ import annotations

from sandbox.demo_setup import REPO, SERVICE, say


def show_four_keys(demo, live: set[str], bad: set[str]) -> None:
    """`demo` is a sandbox.demo.Demo after its story; `live` the shas the story put live,
    `bad` the ones it made bad."""
    deploys = [d for d in demo._get(f"/api/deploys?service={SERVICE}&limit=200") or []
               if d["environment"] == "production"]
    went_live = {d["sha"] for d in deploys if any(e["kind"] == "live" for e in d["events"])}
    judged = {d["sha"] for d in deploys if any(e["kind"] == "rolling_back" for e in d["events"])}
    demo.check(live <= went_live and judged == bad,
               f"{len(went_live)} releases went live and {len(bad)} was judged bad, as the story played")

    def served():
        rows = demo._get(f"/api/dora?service={SERVICE}&environment=production&days=30") or [{}]
        keys = rows[0]
        # Lead times are written just after a release goes live: wait for the last one's.
        ready = keys.get("deployments") == len(went_live) and keys.get("lead_time_p50_seconds") is not None
        return keys if ready else None

    keys = demo.wait(served, 30, lambda: f"GET /api/dora did not count {len(went_live)} deployments")
    restore = keys["time_to_restore_p50_seconds"]
    say(f"DORA's four keys for {REPO} in production over {keys['days']} days (GET /api/dora):")
    say(f"  deployment frequency:  {keys['deployments']} deploys ({keys['deployment_frequency_per_day']}/day)")
    say(f"  lead time for changes: {keys['lead_time_p50_seconds']:.0f}s (median, first commit to live)")
    say(f"  change failure rate:   {keys['change_failure_rate']:.0%}")
    say(f"  time to restore:       {restore or 0:.0f}s (median, bad release found to a good one serving)")
    went_out = went_live | bad
    rate = round(len(bad) / len(went_out), 4)
    demo.check(keys["change_failure_rate"] == rate and (restore or 0) > 0 and keys["lead_time_p50_seconds"] > 0,
               f"the four keys match the story: {len(went_live)} deployments, {len(bad)} bad of {len(went_out)} "
               f"that went out ({rate:.0%}), a restore that took {restore or 0:.0f}s")
