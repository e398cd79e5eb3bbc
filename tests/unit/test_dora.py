"""DORA's four keys (bot/dora.py) against hand-computed values, and the lead times recorded as a
release goes live (bot/notify/dora_reporter.py) from a real git history."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from bot.dora import daily_series, four_keys, parse_days
from bot.errors import MainlineError, NotFoundError
from bot.infra.db.store import Store
from bot.infra.git import GitClient
from bot.notify.dora_reporter import LeadTimeReporter, change_starts
from bot.ports import DeployNotice
from tests.dora_story import DAY, EXPECTED, NOW, History, at, play


@pytest.fixture
def store(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/mainline.db")
    store.migrate()
    return store


@pytest.mark.parametrize("days", [7, 30, 90])
def test_each_key_matches_the_hand_computed_value_over_7_30_and_90_days(store, days):
    play(store)
    [row] = four_keys(store, "web", "production", days, now=NOW)
    assert row == pytest.approx(EXPECTED[("web", "production", days)])


def test_every_environment_of_every_service_is_listed_when_none_is_named(store):
    play(store)
    rows = four_keys(store, days=30, now=NOW)
    assert [(r["service"], r["environment"]) for r in rows] == [("api", "production"), ("web", "production"),
                                                               ("web", "staging")]
    assert rows[0] == pytest.approx(EXPECTED[("api", "production", 30)])
    assert four_keys(store, environment="staging", now=NOW) == [EXPECTED[("web", "staging", 30)]]


def test_an_environment_with_no_deploys_has_no_rates_only_zero_deployments(store):
    History(store).service("web", "production")
    assert four_keys(store, "web", now=NOW) == [{
        "service": "web", "environment": "production", "days": 30, "deployments": 0,
        "deployment_frequency_per_day": 0.0, "lead_time_p50_seconds": None, "change_failure_rate": None,
        "time_to_restore_p50_seconds": None}]


def test_a_bad_release_not_yet_restored_counts_as_a_failure_with_no_time_to_restore(store):
    h = History(store)
    web = h.service("web", "production")
    h.live(web, "production", NOW - 2 * DAY)
    h.bad(web, "production", NOW - DAY, restored_after=None)
    [row] = four_keys(store, "web", now=NOW)
    assert (row["deployments"], row["change_failure_rate"], row["time_to_restore_p50_seconds"]) == (1, 0.5, None)


def test_records_outside_the_window_do_not_count(store):
    play(store)
    [row] = four_keys(store, "web", "production", 1, now=NOW)
    assert (row["deployments"], row["lead_time_p50_seconds"], row["change_failure_rate"]) == (0, None, 1.0)
    assert row["time_to_restore_p50_seconds"] == 120.0  # the rollback a person made a day ago
    [later] = four_keys(store, "web", "production", 7, now=NOW + 10 * DAY)
    assert later["deployments"] == 0 and later["change_failure_rate"] is None


def test_an_unknown_service_or_environment_is_not_found(store):
    play(store)
    with pytest.raises(NotFoundError, match="unknown service 'nope'"):
        four_keys(store, "nope")
    with pytest.raises(NotFoundError, match="web has no environment 'qa'"):
        four_keys(store, "web", "qa")


@pytest.mark.parametrize("text, days", [(None, 30), ("", 30), ("7", 7), ("90", 90), ("1", 1), ("365", 365)])
def test_days_are_a_whole_number_from_1_to_365(text, days):
    assert parse_days(text) == days


@pytest.mark.parametrize("text", ["0", "366", "-7", "7.5", "week", "1e3"])
def test_other_days_are_refused_with_the_rule(text):
    with pytest.raises(MainlineError, match="from 1 to 365"):
        parse_days(text)


def test_the_daily_series_counts_deploys_and_failures_per_day_oldest_first(store):
    play(store)
    series = daily_series(store, "web", "production", 7, now=NOW)
    assert [d["day"] for d in series] == [(NOW.date() - timedelta(days=6 - i)).isoformat() for i in range(7)]
    by_day = {d["day"]: (d["deployments"], d["failures"]) for d in series}
    assert by_day[(NOW - 5 * DAY).date().isoformat()] == (1, 1)  # v3 found bad, its revert live
    assert by_day[(NOW - 2 * DAY).date().isoformat()] == (1, 0)
    assert by_day[(NOW - DAY).date().isoformat()] == (0, 1)       # rolled back by a person
    assert sum(d["deployments"] for d in series) == 2 and sum(d["failures"] for d in series) == 2
    assert daily_series(store, "web", "staging", 3, now=NOW) == [
        {"day": (NOW.date() - timedelta(days=2 - i)).isoformat(), "deployments": 0, "failures": 0} for i in range(3)]


# -- lead time from git ------------------------------------------------------------------------------


def git(repo, *args: str, when: datetime | None = None) -> str:
    stamp = f"{int(when.replace(tzinfo=UTC).timestamp())} +0000" if when else "1700000000 +0000"
    env = {"GIT_AUTHOR_NAME": "Octo Cat", "GIT_AUTHOR_EMAIL": "octocat@example.com", "GIT_COMMITTER_NAME": "Octo",
           "GIT_COMMITTER_EMAIL": "octocat@example.com", "PATH": "/usr/bin:/bin", "HOME": str(repo),
           "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def history(tmp_path):
    """master: c0 (day 0) ─ merge of PR #1 (branch commits on days 1 and 2, merged day 5; the
    branch took master's day-3 commit on the way) ─ a direct push (day 6)."""
    bare, work = tmp_path / "origin.git", tmp_path / "work"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=master", str(bare))
    git(tmp_path, "clone", "--quiet", str(bare), str(work))
    git(work, "checkout", "--quiet", "-b", "master")
    t0 = datetime(2026, 12, 1)

    def day(n: int) -> datetime:
        return t0 + timedelta(days=n)

    def commit(message: str, when: datetime) -> str:
        (work / f"{message}.txt").write_text(message)
        git(work, "add", "-A")
        git(work, "commit", "--quiet", "-m", message, when=when)
        return git(work, "rev-parse", "HEAD")

    shas = {"c0": commit("c0", day(0))}
    git(work, "checkout", "--quiet", "-b", "feature")
    shas["f1"] = commit("f1", day(1))
    shas["f2"] = commit("f2", day(2))
    git(work, "checkout", "--quiet", "master")
    shas["c3"] = commit("c3", day(3))
    git(work, "checkout", "--quiet", "feature")
    git(work, "merge", "--quiet", "--no-edit", "master", when=day(4))  # master into the branch
    git(work, "checkout", "--quiet", "master")
    git(work, "merge", "--quiet", "--no-ff", "-m", "Merge pull request #1 from octocat/feature", "feature",
        when=day(5))
    shas["m"] = git(work, "rev-parse", "HEAD")
    shas["p"] = commit("p", day(6))
    git(work, "push", "--quiet", "origin", "master")
    return str(bare), shas, day


def test_each_change_began_at_its_earliest_commit_a_merge_at_its_branch_s_first(tmp_path, history):
    clone_url, shas, day = history
    graph = GitClient(tmp_path / "cache").commit_graph(clone_url, shas["c0"], shas["p"])

    def stamp(d: datetime) -> int:
        return int(d.replace(tzinfo=UTC).timestamp())

    # c3 was pushed on its own; the merge brought f1 and f2 (the branch's merge of master is not its work).
    assert change_starts(graph, shas["p"]) == [(shas["c3"], stamp(day(3))), (shas["m"], stamp(day(1))),
                                              (shas["p"], stamp(day(6)))]
    first = GitClient(tmp_path / "cache").commit_graph(clone_url, None, shas["c0"])
    assert change_starts(first, shas["c0"], only_tip=True) == [(shas["c0"], stamp(day(0)))]


def deploy_live(store, svc, sha: str, previous: str | None, when: datetime):
    with at(when):
        row, _ = store.create_deploy(svc.id, "production", sha, "refs/heads/master", "github")
        store.update_deploy(row.id, None, previous_sha=previous, state="live")
        store.add_event(row.id, svc.name, "production", "live", f"{sha[:12]} is live")
    return DeployNotice(row.id, svc.name, "production", svc.repo, sha, "live", "live")


def test_a_release_going_live_records_each_change_s_lead_time_once(store, tmp_path, history):
    clone_url, shas, day = history
    svc = store.upsert_service("web", "acme/web", clone_url, "master")
    store.environment(svc.id, "production")
    reporter = LeadTimeReporter(store, GitClient(tmp_path / "cache"))
    first = deploy_live(store, svc, shas["c0"], None, day(0) + timedelta(hours=1))
    with at(day(0) + timedelta(hours=1)):
        reporter.notify(first)
    second = deploy_live(store, svc, shas["p"], shas["c0"], day(7))
    with at(day(7)):
        reporter.notify(second)
        reporter.notify(second)  # a deploy told twice (or going live again) adds nothing
    leads = {e.data["sha"]: e.data["seconds"] for e in store.events(second.deploy_id) if e.kind == "lead_time"}
    assert leads == {shas["c3"]: 4 * 86400.0, shas["m"]: 6 * 86400.0, shas["p"]: 86400.0}
    [row] = four_keys(store, "web", now=day(8))
    # The median of 1 hour (c0), 1 day (p), 4 days (c3) and 6 days (the pull request).
    assert row["deployments"] == 2 and row["lead_time_p50_seconds"] == 2.5 * 86400


def test_lead_times_are_recorded_only_when_a_release_goes_live(store, tmp_path, history):
    clone_url, shas, day = history
    svc = store.upsert_service("web", "acme/web", clone_url, "master")
    notice = deploy_live(store, svc, shas["p"], shas["c0"], day(7))
    reporter = LeadTimeReporter(store, GitClient(tmp_path / "cache"))
    for state, kind in (("verifying", "transition"), ("live", "gate"), ("rolling_back", "transition")):
        reporter.notify(DeployNotice(notice.deploy_id, "web", "production", svc.repo, shas["p"], state, "", kind=kind))
    assert [e.kind for e in store.events(notice.deploy_id)] == ["live"]


def test_an_unreadable_repository_costs_the_lead_times_not_the_deploy(store, tmp_path, caplog):
    svc = store.upsert_service("web", "acme/web", str(tmp_path / "gone.git"), "master")
    notice = deploy_live(store, svc, "a" * 40, None, NOW)
    LeadTimeReporter(store, GitClient(tmp_path / "cache")).notify(notice)
    assert "no lead times for web@aaaaaaaaaaaa" in caplog.text
    assert [e.kind for e in store.events(notice.deploy_id)] == ["live"]
