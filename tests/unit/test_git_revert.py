"""Reverting on the production branch with the real git client: idempotent, and a conflict is
reported with its files instead of failing silently."""

from __future__ import annotations

from bot.infra.git import GitClient
from tests.conftest import git


def test_revert_is_pushed_once_even_when_asked_twice(tmp_path, local_repo):
    good = local_repo.commit("good", {"app.txt": "v1\n"})
    bad = local_repo.commit("Merge pull request #2 from octocat/bad", {"app.txt": "v2\n"})
    client = GitClient(tmp_path / "cache")
    first = client.revert_and_push(local_repo.clone_url, "master", [bad], "Mainline rolled back: health failed")
    again = client.revert_and_push(local_repo.clone_url, "master", [bad], "Mainline rolled back: health failed")
    assert first.reverted == (bad,) and first.sha is not None
    assert again.sha is None and again.reverted == ()
    assert client.same_tree(local_repo.clone_url, good, first.sha)
    subjects = git("log", "--format=%s", "master", cwd=local_repo.bare).splitlines()
    assert subjects.count('Revert "Merge pull request #2 from octocat/bad"') == 1
    body = git("log", "-1", "--format=%B", "master", cwd=local_repo.bare)
    assert f"This reverts commit {bad}" in body and "health failed" in body


def test_conflicting_revert_names_the_files_and_leaves_the_branch_alone(tmp_path, local_repo):
    local_repo.commit("good", {"app.txt": "v1\n"})
    bad = local_repo.commit("bad", {"app.txt": "v2\n"})
    head = local_repo.commit("later change on the same line", {"app.txt": "v3\n"})
    outcome = GitClient(tmp_path / "cache").revert_and_push(local_repo.clone_url, "master", [bad], "rolled back")
    assert outcome.conflicted and outcome.conflict_files == ("app.txt",)
    assert git("rev-parse", "master", cwd=local_repo.bare) == head
