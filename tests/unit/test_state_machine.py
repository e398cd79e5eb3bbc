"""The deploy state machine of DESIGN.md, as the pipeline enforces it."""

from bot.domain import TERMINAL_STATES, DeployState, can_transition

S = DeployState


def test_the_forward_path_and_the_failure_path_are_allowed():
    forward = [S.QUEUED, S.GATING, S.BUILDING, S.ROLLING_OUT, S.VERIFYING, S.LIVE]
    failure = [S.VERIFYING, S.ROLLING_BACK, S.ROLLED_BACK, S.REVERTING, S.REVERTED]
    for path in (forward, failure):
        for src, dst in zip(path, path[1:]):
            assert can_transition(src, dst), f"{src.value} -> {dst.value}"


def test_finished_deploys_stay_finished_except_a_person_rolling_back_what_serves():
    for src in TERMINAL_STATES:
        allowed = {dst for dst in S if can_transition(src, dst)}
        assert allowed == ({S.ROLLING_BACK} if src in (S.LIVE, S.FAILED) else set())


def test_a_rollback_never_skips_its_verification_or_goes_live():
    assert not can_transition(S.ROLLING_BACK, S.REVERTING)
    assert not can_transition(S.ROLLING_BACK, S.LIVE)
    assert not can_transition(S.QUEUED, S.LIVE)
