"""The real git client's two questions and one write for culprit finding: would reverting the
culprit alone conflict (a dry run that changes nothing), and putting back the commits a full
revert took (skipped when already there)."""

from __future__ import annotations

from bot.infra.git import GitClient
from tests.conftest import git


def test_the_dry_run_names_the_conflict_and_changes_nothing(tmp_path, local_repo):
    local_repo.commit("good", {"app.txt": "v1\n"})
    culprit = local_repo.commit("Merge pull request #2", {"app.txt": "v2\n"})
    later = local_repo.commit("Merge pull request #3", {"app.txt": "v3\n", "page.txt": "three\n"})
    client = GitClient(tmp_path / "cache")
    assert client.revert_conflicts(local_repo.clone_url, "master", [culprit]) == ["app.txt"]
    assert client.revert_conflicts(local_repo.clone_url, "master", [later, culprit]) == []
    assert git("rev-parse", "master", cwd=local_repo.bare) == later


def test_innocent_commits_are_put_back_once(tmp_path, local_repo):
    local_repo.commit("good", {"app.txt": "v1\n"})
    one = local_repo.commit("Merge pull request #1", {"one.txt": "one\n"})
    culprit = local_repo.commit("Merge pull request #2", {"app.txt": "broken\n"})
    three = local_repo.commit("Merge pull request #3", {"three.txt": "three\n"})
    client = GitClient(tmp_path / "cache")
    client.revert_and_push(local_repo.clone_url, "master", [three, culprit, one], "the whole release")
    put = client.reapply(local_repo.clone_url, "master", [one, three], "found the culprit")
    assert put.reverted == (one, three) and put.sha == git("rev-parse", "master", cwd=local_repo.bare)
    files = git("ls-tree", "--name-only", "master", cwd=local_repo.bare).split()
    assert "one.txt" in files and "three.txt" in files
    assert git("show", "master:app.txt", cwd=local_repo.bare) == "v1"
    again = client.reapply(local_repo.clone_url, "master", [one, three], "found the culprit")
    assert again.sha is None and again.reverted == ()
