"""The statistics a canary is judged by, sized for small samples.

Error ratios: Fisher's exact test, one-sided (is the canary's 5xx ratio higher than the
baseline's?). Exact, so it holds at 100 requests as at 100,000, where a z-test on proportions
would need large counts. Latencies: Mann-Whitney U, one-sided (are the canary's latencies
stochastically larger?), which assumes no distribution. Every figure carries its sample size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import fisher_exact, mannwhitneyu


@dataclass(frozen=True)
class Ratio:
    """`errors` out of `total` requests, e.g. 5xx responses out of all responses."""

    errors: int
    total: int

    def __post_init__(self) -> None:
        if self.total < 0 or self.errors < 0 or self.errors > self.total:
            raise ValueError(f"not a ratio: {self.errors}/{self.total}")

    @property
    def rate(self) -> float:
        return self.errors / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.rate:.1%} ({self.errors}/{self.total})"


def ratio_p_value(canary: Ratio, baseline: Ratio) -> float:
    """P-value of Fisher's exact test that the canary's ratio is higher than the baseline's."""
    if canary.total == 0 or baseline.total == 0:
        return 1.0
    table = [[canary.errors, canary.total - canary.errors], [baseline.errors, baseline.total - baseline.errors]]
    _, p = fisher_exact(table, alternative="greater")
    return float(min(1.0, max(0.0, p)))


def latency_p_value(canary: Sequence[float], baseline: Sequence[float]) -> float:
    """P-value of Mann-Whitney U that the canary's latencies are larger than the baseline's."""
    if not canary or not baseline:
        return 1.0
    if len(set(canary) | set(baseline)) == 1:
        return 1.0  # all equal: no evidence either way (scipy would warn)
    _, p = mannwhitneyu(list(canary), list(baseline), alternative="greater")
    return float(min(1.0, max(0.0, p)))


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def format_p(p: float | None) -> str:
    """`p < 0.001`, `p = 0.042`, or `p n/a` when no test ran."""
    if p is None:
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
