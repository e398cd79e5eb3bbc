"""The deploy state machine of DESIGN.md, as the engine enforces it, and its diagram in the README."""

from itertools import pairwise
from pathlib import Path

from bot.domain import TERMINAL_STATES, TRANSITIONS, DeployState, can_transition, mermaid

S = DeployState


def test_the_forward_path_and_the_failure_path_are_allowed():
    forward = [S.QUEUED, S.GATING, S.BUILDING, S.ROLLING_OUT, S.VERIFYING, S.LIVE]
    failure = [S.VERIFYING, S.ROLLING_BACK, S.ROLLED_BACK, S.REVERTING, S.REVERTED]
    for path in (forward, failure):
        for src, dst in pairwise(path):
            assert can_transition(src, dst), f"{src.value} -> {dst.value}"


def test_finished_deploys_stay_finished_except_a_rollback_of_what_serves_or_asking_again():
    expected = {
        S.LIVE: {S.ROLLING_BACK, S.QUEUED},  # a person rolls it back; the watchdog queues it again
        S.FAILED: {S.ROLLING_BACK, S.QUEUED},  # still serving after a refused rollback; asked for again
        S.SUPERSEDED: {S.QUEUED},  # asked for again by hand
        S.REVERTED: {S.BISECTING},  # a person asks which commit of a release reverted in full broke it
    }
    for src in TERMINAL_STATES:
        assert {dst for dst in S if can_transition(src, dst)} == expected[src], src.value


def test_a_rollback_never_skips_its_verification_or_goes_live():
    assert not can_transition(S.ROLLING_BACK, S.REVERTING)
    assert not can_transition(S.ROLLING_BACK, S.LIVE)
    assert not can_transition(S.QUEUED, S.LIVE)


def test_every_state_has_a_row_in_the_table():
    assert set(TRANSITIONS) == set(S)


def test_the_readme_shows_the_state_diagram_generated_from_the_table():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"```mermaid\n{mermaid()}```" in readme, (
        "regenerate it: python -c 'from bot.domain import mermaid; print(mermaid())'")
