"""The `culprit:` block of `.github/deploy.yml`. Every value is bounded: a repository decides how
long Mainline spends on its bisections, never without limit."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.config_values import HEALTH_PATH, DurationRange, check_duration, parse_duration

BUDGET = DurationRange(1.0, 2 * 3600.0)


class CulpritCheck(BaseModel):
    """A synthetic request a candidate must answer with `status` (shadow mode's only traffic)."""

    model_config = ConfigDict(extra="forbid")

    path: HEALTH_PATH
    status: int = Field(default=200, ge=100, le=599)


class Culprit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["canary", "shadow"] = Field(
        default="canary", description="canary: a small share of real traffic; shadow: only probes and checks")
    weight: int = Field(default=5, ge=1, le=50, description="percent of traffic a canary candidate takes")
    max_rounds: int = Field(default=6, ge=1, le=10, description="search rounds at most (6 rounds: 64 commits)")
    budget: str | float = Field(default="30m", description="time the whole search may take, at most 2h")
    checks: list[CulpritCheck] = Field(default_factory=list, max_length=10)

    @field_validator("budget")
    @classmethod
    def _budget(cls, value: Any) -> Any:
        return check_duration(value, BUDGET)

    def budget_seconds(self) -> float:
        return parse_duration(check_duration(self.budget, BUDGET))
