"""Run every gate in a fixed order, and find what holds a deploy back."""

from __future__ import annotations

from typing import Literal

from bot.domain import GateResult
from checks.ci_contexts import ci_contexts_gate
from checks.depends_on import depends_on_gate
from checks.inputs import GateInputs
from checks.lock import lock_gate
from checks.migrations import migrations_gate
from checks.repo_checks import repo_checks_gate
from checks.window import window_gate

CONFIG_GATE = "config"
# Repo checks run in a container of the built image, so they come last and only after a build.
PRE_BUILD = ("config", "lock", "window", "ci", "migrations", "depends-on")
ORDER = (*PRE_BUILD, "repo-checks")

Stage = Literal["all", "pre-build", "post-build"]


def config_gate(inputs: GateInputs) -> GateResult:
    """An invalid `.github/deploy.yml` deploys nothing; say which line is wrong."""
    if inputs.config is None:
        problems = "; ".join(inputs.config_problems) or ".github/deploy.yml could not be read"
        return GateResult.block(CONFIG_GATE, f"invalid config: {problems}")
    if inputs.environment not in inputs.config.environments:
        known = ", ".join(inputs.config.environments) or "none"
        return GateResult.block(CONFIG_GATE,
                                f"environment {inputs.environment!r} is not in .github/deploy.yml (it has: {known})")
    return GateResult.ok(CONFIG_GATE, "config valid")


def evaluate(inputs: GateInputs, stage: Stage = "all") -> list[GateResult]:
    """Every gate's verdict, in ORDER. `pre-build` leaves out repo checks (they need the image);
    `post-build` runs only them. With an invalid config only the config gate's verdict comes
    back, since the other gates would be reading a config that does not exist."""
    results: list[GateResult] = []
    if stage != "post-build":
        config = config_gate(inputs)
        results.append(config)
        if not config.passed:
            return results
        results.extend(_pre_build(inputs))
    if stage != "pre-build":
        results.append(_repo_checks(inputs))
    return results


def _pre_build(inputs: GateInputs) -> list[GateResult]:
    config = inputs.config
    assert config is not None
    lock = inputs.lock
    ci = inputs.ci
    required = ci.required or list(config.required_contexts)
    return [
        lock_gate(lock.lock, lock.manual, lock.force, lock.reason),
        window_gate(inputs.window, inputs.now, inputs.window_override),
        ci_contexts_gate(required, ci.statuses, inputs.now, ci.pending_since, ci.timeout),
        migrations_gate(inputs.migrations, config.migrations.policy, inputs.approval, inputs.deployers),
        depends_on_gate(inputs.dependencies),
    ]


def _repo_checks(inputs: GateInputs) -> GateResult:
    if inputs.repo_checks is None:
        if inputs.config is not None and not inputs.config.checks:
            return GateResult.ok("repo-checks", "no repo checks configured")
        return GateResult.wait("repo-checks", "repo checks run once the image is built")
    return repo_checks_gate(inputs.repo_checks)


def first_blocker(results: list[GateResult]) -> GateResult | None:
    """The first gate that did not pass: what "why isn't this deploying?" shows."""
    return next((r for r in results if not r.passed), None)
