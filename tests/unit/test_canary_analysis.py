"""The canary judge: exact tests sized for small samples, sample sizes always stated, too little
traffic never a pass, limits that end a canary."""

from bot.canary.analysis import FAIL, INCONCLUSIVE, PASS, Observed, Tally, judge_interval, lines
from bot.canary.policy import HTTP_5XX_RATIO, LATENCY_P95, CanaryPolicy, MetricSpec
from bot.canary.stats import Ratio, latency_p_value, ratio_p_value

POLICY = CanaryPolicy(min_requests=100, failure_limit=1, inconclusive_limit=3,
                      metrics=(MetricSpec("error-rate", builtin=HTTP_5XX_RATIO, max_increase=0.01),))


def verdict_of(canary, baseline, policy=POLICY):
    return judge_interval(1, 10, {"error-rate": Observed(canary=canary, baseline=baseline)}, policy)


def test_a_clearly_worse_canary_fails_and_says_its_numbers():
    v = verdict_of(Ratio(37, 900), Ratio(2, 950))
    assert v.verdict == FAIL
    assert v.metrics[0].line == "canary 5xx 4.1% (37/900) vs baseline 0.2% (2/950), p < 0.001: fail"
    data = v.as_data()
    assert data["step"] == 1 and data["weight"] == 10 and data["verdict"] == "fail"
    assert set(data["metrics"][0]) >= {"name", "canary", "baseline", "p_value", "result"}
    assert lines(data) == [v.metrics[0].line]


def test_an_equal_canary_passes():
    assert verdict_of(Ratio(1, 400), Ratio(3, 1200)).verdict == PASS
    assert verdict_of(Ratio(0, 150), Ratio(0, 900)).verdict == PASS


def test_too_little_traffic_is_inconclusive_never_a_pass_even_with_no_errors():
    v = verdict_of(Ratio(0, 99), Ratio(0, 5000))
    assert v.verdict == INCONCLUSIVE
    assert "fewer than 100 requests" in v.metrics[0].line and "(0/99)" in v.metrics[0].line


def test_worse_but_not_yet_significant_waits_for_more_traffic():
    # 3/100 against 0/100: 3 points above, but one-sided Fisher p = 0.12
    v = verdict_of(Ratio(3, 100), Ratio(0, 100))
    assert v.verdict == INCONCLUSIVE and v.metrics[0].p_value > 0.05


def test_a_small_allowed_increase_passes():
    assert verdict_of(Ratio(5, 1000), Ratio(1, 1000)).verdict == PASS  # +0.4 points < 1 point


def test_exact_test_is_one_sided():
    assert ratio_p_value(Ratio(0, 500), Ratio(50, 500)) > 0.99
    assert ratio_p_value(Ratio(50, 500), Ratio(0, 500)) < 1e-10
    assert ratio_p_value(Ratio(0, 0), Ratio(0, 10)) == 1.0


def test_latency_mann_whitney_fails_a_slower_canary_and_passes_an_equal_one():
    policy = CanaryPolicy(min_requests=1, metrics=(MetricSpec("p95", builtin=LATENCY_P95, max_ratio=1.25),))
    fast = tuple(0.010 + i * 0.0001 for i in range(30))
    slow = tuple(0.030 + i * 0.0001 for i in range(30))
    bad = judge_interval(2, 50, {"p95": Observed(canary_latencies=slow, baseline_latencies=fast)}, policy)
    assert bad.verdict == FAIL and "(n=30)" in bad.metrics[0].line
    good = judge_interval(2, 50, {"p95": Observed(canary_latencies=fast, baseline_latencies=fast)}, policy)
    assert good.verdict == PASS
    few = judge_interval(2, 50, {"p95": Observed(canary_latencies=slow[:3], baseline_latencies=fast)}, policy)
    assert few.verdict == INCONCLUSIVE
    assert latency_p_value((0.1,) * 5, (0.1,) * 5) == 1.0


def test_a_user_query_is_held_to_its_bounds_and_no_data_is_inconclusive():
    policy = CanaryPolicy(metrics=(MetricSpec("checkout-errors", prometheus="x", max=0),))
    assert judge_interval(1, 10, {"checkout-errors": Observed(value=0.0)}, policy).verdict == PASS
    failed = judge_interval(1, 10, {"checkout-errors": Observed(value=3.0)}, policy)
    assert failed.verdict == FAIL and failed.metrics[0].line == "checkout-errors 3 (max 0): fail"
    assert judge_interval(1, 10, {}, policy).verdict == INCONCLUSIVE


def test_the_tally_ends_at_the_failure_limit_and_after_inconclusive_in_a_row():
    tally = Tally(CanaryPolicy(failure_limit=2, inconclusive_limit=3))
    bad, good, unsure = (verdict_of(Ratio(90, 900), Ratio(0, 900)), verdict_of(Ratio(0, 900), Ratio(0, 900)),
                         verdict_of(Ratio(0, 9), Ratio(0, 9)))
    assert tally.add(bad) == PASS
    assert tally.add(bad) == FAIL
    stuck = Tally(CanaryPolicy(inconclusive_limit=3))
    assert [stuck.add(v) for v in (unsure, unsure, good, unsure, unsure)] == [PASS] * 5
    assert stuck.add(unsure) == INCONCLUSIVE
