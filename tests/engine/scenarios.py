"""Each story the engine must tell, as a function of a fresh World; the tests run them one by
one, and test_table.py runs them all to check that together they make every move of the table."""

from __future__ import annotations

from bot.culprit.manual import request_bisect
from bot.domain import DeployState
from bot.errors import TransientError
from tests.engine.world import CLONE, REPO, World
from tests.fakes import Pull

S = DeployState


def forward(w: World) -> str:
    sha = w.merge({"app.py": "v1"})
    w.ship(sha)
    assert w.state(sha) is S.LIVE and w.live() == sha
    assert w.target.serving[("shop", "production")] == w.image(sha)
    return sha


def bad_bake_rolls_back_and_reverts(w: World) -> tuple[str, str]:
    good = forward(w)
    bad = w.merge({"app.py": "v2 (broken)"}, "Merge pull request #7 from octocat/broken")
    w.target.bad.add(w.image(bad))
    w.ship(bad)
    assert w.state(bad) is S.REVERTED
    # The revert's tree is the good one's: it goes live without a rollout.
    head = w.head()
    assert head != bad and w.state(head) is S.LIVE and w.live() == head
    assert w.target.serving[("shop", "production")] == w.image(good)
    return good, bad


def rollout_failure_rolls_back(w: World) -> None:
    forward(w)
    bad = w.merge({"app.py": "v2 (never healthy)"})
    w.target.unhealthy.add(w.image(bad))
    w.ship(bad)
    assert w.state(bad) is S.REVERTED


def first_release_bad_has_nothing_to_restore(w: World) -> None:
    sha = w.merge({"app.py": "v1 (broken)"})
    w.target.bad.add(w.image(sha))
    w.ship(sha)
    d = w.deploy(sha)
    assert d.state == "failed" and "nothing to roll back to" in d.reason
    assert ("shop", "production") not in w.target.serving


def build_failure(w: World) -> str:
    sha = w.merge({"app.py": "v1", "Dockerfile": "FROM nowhere"})
    w.builder.broken.add(w.image(sha))
    w.ship(sha)
    assert w.state(sha) is S.FAILED and w.deploy(sha).reason.startswith("build failed")
    return sha


def failed_then_asked_again(w: World) -> None:
    sha = build_failure(w)
    w.builder.broken.clear()
    w.pipeline.request_deploy("shop", "production", sha[:12], "octocat")
    w.drive()
    assert w.state(sha) is S.LIVE


def revert_conflict_locks(w: World) -> None:
    forward(w)
    bad = w.merge({"app.py": "v2 (broken)"})
    w.target.bad.add(w.image(bad))
    w.git.conflicting.add(bad)
    w.ship(bad)
    d = w.deploy(bad)
    assert d.state == "failed" and "conflicts in app.py" in d.reason
    assert w.store.lock_for("shop", "production") is not None


def infrastructure_gives_up(w: World) -> None:
    """Docker keeps failing mid-rollout: the previous release is restored, unjudged, nothing reverted."""
    good = forward(w)
    sha = w.merge({"app.py": "v2"})
    w.target.faults["verify"] = TransientError("the Docker engine is not answering")
    w.push(sha)
    for _ in range(12):  # one pass per reconciler tick
        w.drive()
    del w.target.faults["verify"]
    w.drive()
    d = w.deploy(sha)
    assert d.state == "failed" and d.reason.startswith("infrastructure: ")
    assert w.live() == good and w.git.pushes == []  # nothing reverted
    assert w.target.serving[("shop", "production")] == w.image(good)


def first_release_infrastructure_gives_up(w: World) -> None:
    sha = w.merge({"app.py": "v1"})
    w.target.faults["roll_out"] = TransientError("the registry is down")
    w.push(sha)
    for _ in range(10):
        w.drive()
    assert w.state(sha) is S.FAILED and w.live() is None


def first_release_verify_gives_up(w: World) -> None:
    sha = w.merge({"app.py": "v1"})
    w.target.faults["verify"] = TransientError("HAProxy's socket is gone")
    w.push(sha)
    for _ in range(10):
        w.drive()
    assert w.state(sha) is S.FAILED and w.image(sha) in w.target.discarded


def config_unreadable_fails_gating(w: World) -> None:
    sha = w.merge({"app.py": "v1"})
    w.push(sha)
    svc = w.store.services_[0]
    w.store.update_deploy(w.deploy(sha).id, None, state=S.GATING)  # as a crash would leave it
    svc.config_text = "{not json"
    w.git.faults["head"] = RuntimeError("the git host is unreachable")
    for _ in range(4):
        w.drive()
    assert w.state(sha) is S.FAILED


def coalescing(w: World) -> None:
    forward(w)
    first = w.merge({"app.py": "v2"}, "Merge pull request #1")
    second = w.merge({"app.py": "v3"}, "Merge pull request #2")
    w.github.add_pull(REPO, Pull(1, "v2", "octocat", merge_commit_sha=first))
    w.github.add_pull(REPO, Pull(2, "v3", "hubot", merge_commit_sha=second))
    # The webhooks arrive newest first and late: the tip goes out, carrying the other.
    w.push(second, pull_numbers=(2,))
    w.push(first, pull_numbers=(1,))
    w.drive()
    assert w.state(second) is S.LIVE and w.state(first) is S.SUPERSEDED
    assert w.deploy(second).pull_numbers == [1, 2]
    assert w.builder.builds.count(w.image(first)) == 0
    assert {n.data.get("authors") and tuple(n.data["authors"]) for n in w.chat.notices
            if n.sha == second and n.state == "live"} == {("hubot", "octocat")}  # every PR in it hears


def late_webhook_of_what_is_live(w: World) -> None:
    forward(w)
    older = w.merge({"app.py": "v2"})
    newer = w.merge({"app.py": "v3"})
    w.ship(newer)
    w.push(older)  # its webhook comes after the newer one went live
    w.drive()
    assert w.state(older) is S.SUPERSEDED and w.live() == newer


def superseded_then_asked_again(w: World) -> None:
    forward(w)
    older = w.merge({"app.py": "v2"})
    newer = w.merge({"app.py": "v3"})
    w.ship(newer)
    w.push(older)
    w.drive()
    w.pipeline.request_deploy("shop", "production", older[:12], "octocat")
    w.drive()
    assert w.state(older) is S.LIVE and w.live() == older


def supersede_after_revert(w: World) -> None:
    """A sha merged behind a bad one while it bakes still carries it: it must not go out; the
    head after the revert is what ships."""
    forward(w)
    bad = w.merge({"app.py": "v2 (broken)"})
    later = w.merge({"README": "docs"})
    w.target.bad.add(w.image(bad))
    w.target.hooks["verify"] = lambda plan: plan.sha == bad and w.push(later)  # its webhook, mid-bake
    w.push(bad)
    w.drive()
    assert w.state(bad) is S.REVERTED and w.state(later) is S.SUPERSEDED
    head = w.head()
    assert w.live() == head and w.git.read_file(CLONE, head, "app.py") == "v1"
    assert w.git.read_file(CLONE, head, "README") == "docs"


def person_rolls_back_a_live_release(w: World) -> None:
    good = forward(w)
    sha = w.merge({"app.py": "v2"})
    w.ship(sha)
    w.pipeline.rollback("shop", "production", "slack:U1")
    w.drive()
    assert w.state(sha) is S.REVERTED
    assert w.target.serving[("shop", "production")] == w.image(good)


def watchdog_queues_a_live_head_that_no_longer_runs(w: World) -> None:
    good = forward(w)
    sha = w.merge({"app.py": "v2"})
    w.ship(sha)
    svc = w.store.service("shop")
    w.store.set_live(svc.id, "production", good, w.image(good), None, None)  # someone ran it by hand
    w.pipeline.reconcile()
    assert w.state(sha) is S.QUEUED
    w.drive()
    assert w.state(sha) is S.LIVE and w.live() == sha


def gate_blocks_a_manual_deploy_on_a_lock(w: World) -> None:
    forward(w)
    sha = w.merge({"app.py": "v2"})
    w.pipeline.lock("shop", "production", "octocat", "incident")
    w.pipeline.request_deploy("shop", "production", sha[:12], "octocat")
    w.drive()
    d = w.deploy(sha)
    assert d.state == "failed" and d.reason.startswith("lock: ")


def contract_migration_refuses_the_automatic_rollback(w: World) -> None:
    """Past a contract migration a person decides: the release stays, failed; a person rolls it back."""
    good = forward(w)
    bad = w.merge({"db/V2__drop_email.sql": "ALTER TABLE users DROP COLUMN email;", "app.py": "v2"})
    w.target.bad.add(w.image(bad))
    w.push(bad)
    w.drive()
    assert w.deploy(bad).blocked_by.startswith("migrations")
    w.pipeline.approve(w.deploy(bad).id, "octocat", True, "planned")
    w.drive()
    d = w.deploy(bad)
    assert d.state == "failed" and "contract" in d.reason and w.live() == bad
    w.pipeline.rollback("shop", "production", "octocat")
    w.drive()
    assert w.target.serving[("shop", "production")] == w.image(good)


def batch_bisects_to_the_culprit(w: World) -> None:
    """Three PRs coalesce into one release and the middle one is bad: only it is reverted."""
    forward(w)
    shas = [w.merge({f"page{n}.txt": f"PR {n}"}, f"Merge pull request #{n} from octocat/page{n}") for n in (1, 2, 3)]
    for n, sha in enumerate(shas, 1):
        w.github.add_pull(REPO, Pull(n, f"page {n}", "octocat", merge_commit_sha=sha))
    w.trial.bad.update({w.image(shas[1]), w.image(shas[2])})
    w.target.bad.add(w.image(shas[2]))
    w.ship(shas[2])
    assert w.state(shas[2]) is S.REVERTED
    head = w.head()
    assert w.live() == head and w.git.read_file(CLONE, head, "page2.txt") is None
    assert w.git.read_file(CLONE, head, "page1.txt") == "PR 1" and w.git.read_file(CLONE, head, "page3.txt") == "PR 3"


def person_bisects_a_release_reverted_in_full(w: World) -> None:
    """Docker failed mid-search, so the whole release was reverted; a person runs the search
    again: the culprit stays reverted and the others are put back."""
    forward(w)
    shas = [w.merge({f"page{n}.txt": f"PR {n}"}, f"Merge pull request #{n} from octocat/page{n}") for n in (1, 2)]
    for n, sha in enumerate(shas, 1):
        w.github.add_pull(REPO, Pull(n, f"page {n}", "octocat", merge_commit_sha=sha))
    w.trial.bad.add(w.image(shas[1]))
    w.target.bad.add(w.image(shas[1]))
    w.trial.faults[w.image(shas[0])] = TransientError("the Docker engine is not answering")
    w.ship(shas[1])
    assert w.git.read_file(CLONE, w.head(), "page1.txt") is None  # all reverted
    del w.trial.faults[w.image(shas[0])]
    request_bisect(w.pipeline, "shop", "production", "github:octocat")
    w.drive()
    assert w.state(shas[1]) is S.REVERTED
    head = w.head()
    assert w.live() == head and w.git.read_file(CLONE, head, "page1.txt") == "PR 1"
    assert w.git.read_file(CLONE, head, "page2.txt") is None


ALL = [forward, bad_bake_rolls_back_and_reverts, rollout_failure_rolls_back, first_release_bad_has_nothing_to_restore,
       build_failure, failed_then_asked_again, revert_conflict_locks, infrastructure_gives_up,
       first_release_infrastructure_gives_up, first_release_verify_gives_up, config_unreadable_fails_gating,
       coalescing, late_webhook_of_what_is_live, superseded_then_asked_again, supersede_after_revert,
       person_rolls_back_a_live_release, watchdog_queues_a_live_head_that_no_longer_runs,
       gate_blocks_a_manual_deploy_on_a_lock, contract_migration_refuses_the_automatic_rollback,
       batch_bisects_to_the_culprit, person_bisects_a_release_reverted_in_full]
