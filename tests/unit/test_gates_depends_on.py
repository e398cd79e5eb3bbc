"""Depends-on gate, Depends-On: references, and deploy order across services."""

import pytest

from bot.domain import GateStatus
from checks.depends_on import DependencyCycleError, depends_on_gate, deploy_order, parse_depends_on
from checks.inputs import DependencyState, Ref


def test_parses_depends_on_lines_from_a_pr_body():
    body = (
        "Adds the invoice page.\n\n"
        "Depends-On: acme/api#12\n"
        "depends-on: acme/billing#7, acme/api#12 acme/auth-svc#3\n"
        "Not a reference: acme/api#99 in prose\n"
    )
    assert parse_depends_on(body) == [Ref("acme/api", 12), Ref("acme/billing", 7), Ref("acme/auth-svc", 3)]


def test_parses_a_commit_message_trailer_and_ignores_other_text():
    assert parse_depends_on("Fix login\n\nSigned-off-by: A <a@example.com>\nDepends-On: octo/web.site#1\n") == [
        Ref("octo/web.site", 1)
    ]
    assert parse_depends_on("") == []
    assert str(Ref("acme/api", 12)) == "acme/api#12"


def test_all_dependencies_live_passes():
    deps = [DependencyState("api", True), DependencyState(Ref("acme/api", 12), True)]
    assert depends_on_gate(deps).status is GateStatus.PASS
    assert depends_on_gate([]).status is GateStatus.PASS


def test_waits_naming_each_dependency_not_live_and_why():
    deps = [
        DependencyState("api", False, "api is deploying (building)"),
        DependencyState(Ref("acme/billing", 7), False, "not merged yet"),
        DependencyState("auth", True),
    ]
    result = depends_on_gate(deps)
    assert result.status is GateStatus.WAIT
    assert result.reason == (
        "waiting for these to be live in production first: api (api is deploying (building)), "
        "acme/billing#7 (not merged yet)"
    )


def test_deploy_order_puts_dependencies_first_and_keeps_the_rest_in_order():
    services = {"web": ["api", "auth"], "api": ["db-proxy"], "auth": [], "db-proxy": [], "docs": []}
    order = deploy_order(services)
    assert order.index("db-proxy") < order.index("api") < order.index("web")
    assert order.index("auth") < order.index("web")
    assert sorted(order) == sorted(services)
    assert deploy_order({"a": [], "b": [], "c": []}) == ["a", "b", "c"]


def test_dependencies_outside_the_set_are_taken_as_deployed():
    assert deploy_order({"web": ["payments"]}) == ["web"]


def test_cycle_is_an_error_naming_it():
    with pytest.raises(DependencyCycleError) as err:
        deploy_order({"web": ["api"], "api": ["auth"], "auth": ["web"], "docs": []})
    assert str(err.value) == "services depend on each other in a cycle: web -> api -> auth -> web"


def test_self_dependency_is_a_cycle():
    with pytest.raises(DependencyCycleError, match="api -> api"):
        deploy_order({"api": ["api"]})
