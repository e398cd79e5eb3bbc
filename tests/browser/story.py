"""A short story for the page tests, played through the webhook and the pipeline, with the
outcomes a finished rollout would record written where the worker writes them (no Docker here):
#6 is live; #7 went out, failed its verification, was rolled back and reverted; #8 waits on a
lock. PR titles are kept as the worker keeps them (bot.infra.db.pull_requests)."""

from __future__ import annotations

from datetime import timedelta

from bot.domain import utcnow
from bot.infra.db.pull_requests import PullRequests
from tests.browser.conftest import deliver_merge
from tests.conftest import DEPLOY_YML
from tests.handlers.test_github_webhook import EXAMPLE_REPO

DEPLOYERS_YML = DEPLOY_YML.format(service="web", port=18080).replace(
    "    auto_deploy: true\n", "    auto_deploy: true\n    deployers: [\"github:octocat\"]\n", 1)
# Repository-controlled text that must come out as text: a title, and a probe's output.
HOSTILE_TITLE = 'Checkout <img src=x onerror="window.pwned=1">'
HOSTILE_OUTPUT = '<script>window.pwned=1</script>HTTP/1.1 500 boom'
PROBES = {"probes": 6, "failed_probes": 4, "requests": 40, "errors_5xx": 20, "error_rate": 0.5,
          "last_output": HOSTILE_OUTPUT}


def deploy_of(wired, sha: str) -> dict:
    return next(d for d in wired.pipeline.deploys("web", limit=50) if d["sha"] == sha)


def walk(wired, deploy: dict, steps: list[tuple[str, str, dict | None]], **final) -> None:
    """Record `steps` (kind, message, evidence) as the deploy's events, a few seconds apart in
    the final timestamps, and leave the deploy with `final` fields."""
    for kind, message, data in steps:
        wired.store.add_event(deploy["id"], "web", "production", kind, message, data=data)
    start = utcnow() - timedelta(seconds=95)
    wired.store.update_deploy(deploy["id"], None, started_at=start, finished_at=start + timedelta(seconds=83),
                              **final)


def play(served, wired, repo) -> dict:
    pulls = PullRequests(wired.store)
    v1 = repo.commit("Merge pull request #6 from octocat/first", {".github/deploy.yml": DEPLOYERS_YML})
    deliver_merge(served, wired, repo, v1, number=6)
    pulls.put(EXAMPLE_REPO, 6, "First page", "octocat", v1)
    wired.store.set_live(wired.store.service("web").id, "production", v1, f"127.0.0.1:5000/web:{v1}", None, None)
    walk(wired, deploy_of(wired, v1), [
        ("gating", "gates passed", None), ("building", "built 127.0.0.1:5000/web", None),
        ("rolling_out", "1 replica", None),
        ("verifying", "baking 1s", None),
        ("live", f"{v1[:12]} is live in production",
         {**PROBES, "failed_probes": 0, "errors_5xx": 0, "error_rate": 0.0, "last_output": "ok v1"})],
         state="live", image=f"127.0.0.1:5000/web:{v1}")

    v2 = repo.commit("Merge pull request #7 from hubot/checkout", {"app.txt": "v2\n"})
    deliver_merge(served, wired, repo, v2, number=7)
    pulls.put(EXAMPLE_REPO, 7, HOSTILE_TITLE, "hubot", v2)
    revert = repo.commit('Revert "Merge pull request #7 from hubot/checkout"', {"app.txt": ""})
    walk(wired, deploy_of(wired, v2), [
        ("gating", "gates passed", None), ("building", "built", None), ("rolling_out", "1 replica", None),
        ("verifying", "baking 1s", None),
        ("rolling_back", "verification failed: 50% of responses were 5xx", PROBES),
        ("rolled_back", f"rolled back to {v1[:12]}; it verified healthy", None),
        ("reverting", "reverting the bad commits on master", None),
        ("reverted", f"reverted {v2[:12]} as {revert[:12]}", None)],
         state="reverted", previous_sha=v1, revert_sha=revert, reason="verification failed: 50% of responses were 5xx")

    v3 = repo.commit("Merge pull request #8 from octocat/retry", {"app.txt": "v3\n"})
    deliver_merge(served, wired, repo, v3, number=8)
    pulls.put(EXAMPLE_REPO, 8, "Checkout, again", "octocat", v3)
    wired.pipeline.lock("web", "production", "github:octocat", "incident 42")
    wired.pipeline.drive("web", "production")  # the gates run and say why #8 waits; nothing builds
    return {"v1": v1, "v2": v2, "revert": revert, "v3": v3, "bad": deploy_of(wired, v2)["id"],
            "waiting": deploy_of(wired, v3)["id"]}
