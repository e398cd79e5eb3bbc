"""Attacks on culprit finding, through the public surface.

A repository decides its `culprit:` block, so it could try to make Mainline search forever, send
a candidate's synthetic checks to another host, or blame someone else's pull request by writing
its number into a commit message."""

from __future__ import annotations

import pytest

from tests.engine.test_culprit import batch, plan
from tests.engine.world import World
from tests.security.test_config_attacks import assert_refused

BASE = """\
service: web
environments:
  production: {target: docker}
"""


@pytest.mark.parametrize(("block", "words"), [
    ("culprit: {max_rounds: 1000}", ("culprit.max_rounds", "less than or equal to 10")),
    ("culprit: {budget: 100h}", ("culprit.budget", "between 1s and 2h")),
    ("culprit: {weight: 100}", ("culprit.weight", "less than or equal to 50")),
    ("culprit: {mode: everything}", ("culprit.mode",)),
    ("culprit: {checks: [{path: //evil.example/steal, status: 200}]}", ("culprit.checks.0.path",)),
    ("culprit: {checks: [{path: '@127.0.0.2:80/x', status: 200}]}", ("culprit.checks.0.path",)),
    ("culprit: {checks: [{path: /x, status: 1000}]}", ("culprit.checks.0.status",)),
    ("culprit: {cmd: rm -rf /}", ("culprit.cmd",)),
])
def test_a_hostile_culprit_block_is_refused_naming_its_line(tmp_path, block, words):
    assert_refused(tmp_path, BASE + block + "\n", 4, *words)


def test_too_many_synthetic_checks_are_refused(tmp_path):
    checks = ", ".join("{path: /x}" for _ in range(11))
    assert_refused(tmp_path, BASE + f"culprit: {{checks: [{checks}]}}\n", 4, "culprit.checks")


def test_a_commit_message_naming_another_pr_does_not_move_the_blame(tmp_path):
    """The culprit's own push said it is PR #11; its message claiming #99 changes nothing."""
    w = World(tmp_path)
    shas = batch(w, 3, 1)
    w.git.commits[shas[1]] = w.git.commits[shas[1]].__class__(
        shas[1], w.git.commits[shas[1]].parents, w.git.commits[shas[1]].tree, "Merge pull request #99 from someone/x")
    w.drive()
    assert plan(w, shas[-1])["culprit_pulls"] == [11]
    assert w.deploy(shas[-1]).pull_numbers == [11]
