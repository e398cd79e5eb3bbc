"""Decisions: the migrations gate, and whether a release may be rolled back past its migrations."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain import GateResult
from checks.approval import approval_gate
from checks.inputs import Approval, MigrationFinding

GATE = "migrations"


def migrations_gate(findings: list[MigrationFinding], policy: str, approval: Approval | None,
                    deployers: Sequence[str] = ()) -> GateResult:
    """`block`: any migration blocks. `approve`: any migration waits for a person's approval.
    `allow-expand`: expand migrations pass; a contract one waits for approval. A rejection blocks."""
    if not findings:
        return GateResult.ok(GATE, "no migrations")
    contract = [f for f in findings if f.contract]
    summary = describe(contract or findings)
    why = advice(contract)
    if policy == "block":
        return GateResult.block(GATE, f"migrations are not deployed automatically (policy: block): {summary}; "
                                      f"apply them by hand first{why}")
    if policy == "allow-expand" and not contract:
        return GateResult.ok(GATE, f"expand-only migrations: {summary}")
    asked_for = f"{'contract ' if contract else ''}migration{'s' if len(contract or findings) > 1 else ''} {summary}"
    result = approval_gate(approval, list(deployers), asked_for=asked_for, gate=GATE)
    return result if result.passed else GateResult(GATE, result.status, result.reason + why)


MAX_RULES_NAMED = 3


def advice(findings: list[MigrationFinding]) -> str:
    """` — rule ban-drop-column: <the safe way>`, one per rule the contract findings break (at most
    three), for the gate's check run and the PR preview; empty when nothing is contract."""
    seen: dict[str, str] = {}
    for f in findings:
        for rule in f.rules:
            seen.setdefault(rule.rule, rule.safe)
    if not seen:
        return ""
    named = [f"rule {rule}: {safe}" for rule, safe in list(seen.items())[:MAX_RULES_NAMED]]
    more = f" (+{len(seen) - MAX_RULES_NAMED} more rules)" if len(seen) > MAX_RULES_NAMED else ""
    return " — " + "; ".join(named) + more


def describe(findings: list[MigrationFinding]) -> str:
    """`db/migrate/1_drop.rb (contract: drops column users.email)`, joined."""
    parts = []
    for f in findings:
        why = f.reasons[0] if f.reasons else f.kind
        more = f" +{len(f.reasons) - 1} more" if len(f.reasons) > 1 else ""
        parts.append(f"{f.path} ({why}{more})")
    return ", ".join(parts)


def rollback_allowed(findings: list[MigrationFinding]) -> tuple[bool, str]:
    """Whether a release may be rolled back automatically past its migrations. Contract
    migrations changed the schema in a way the previous release cannot run against, so a
    person decides."""
    contract = [f for f in findings if f.contract]
    if not contract:
        return True, "no contract migrations: the previous release still works with the schema"
    return False, (
        "not rolling back automatically: this release applied contract migrations the previous "
        f"release may not work with: {describe(contract)}; "
        "a person must decide (roll forward, or restore the schema, then roll back)"
    )
