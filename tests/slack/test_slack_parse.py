"""Reading slash commands: a pure function, every form the usage lines promise."""

import pytest
from slack_testkit import WEB

from bot.config import parse_config
from handlers.slack.commands import Command, UsageError, parse_command, resolve


@pytest.mark.parametrize("command, text, expected", [
    ("/deploy", "web", Command("deploy", service="web")),
    ("/deploy", "web v1.2", Command("deploy", service="web", ref="v1.2")),
    ("/deploy", "web to staging", Command("deploy", service="web", environment="staging")),
    ("/deploy", "web feature/x to staging", Command("deploy", service="web", ref="feature/x", environment="staging")),
    ("/rollback", "web", Command("rollback", service="web")),
    ("/rollback", "web staging", Command("rollback", service="web", environment="staging")),
    ("/rollback", "web to a1b2c3d", Command("rollback", service="web", release="a1b2c3d")),
    ("/rollback", "web staging to a1b2c3d",
     Command("rollback", service="web", environment="staging", release="a1b2c3d")),
    ("/lock", "web db migration running", Command("lock", service="web", reason="db migration running")),
    ("/unlock", "web", Command("unlock", service="web")),
    ("/unlock", "web staging", Command("unlock", service="web", environment="staging")),
    ("/status", "", Command("status")),
    ("/status", "web", Command("status", service="web")),
    ("/history", "web", Command("history", service="web")),
    ("/freeze", "holiday   season", Command("freeze", reason="holiday season")),
    ("/unfreeze", "", Command("unfreeze")),
    ("/help", "", Command("help")),
    ("/help", "me please", Command("help")),
    ("/mainline", "deploy web to staging", Command("deploy", service="web", environment="staging")),
    ("/mainline", "", Command("help")),
    ("/DEPLOY", "web", Command("deploy", service="web")),
])
def test_each_documented_form_is_understood(command, text, expected):
    assert parse_command(command, text) == expected


@pytest.mark.parametrize("command, text, usage", [
    ("/deploy", "", "/deploy <service> [ref] [to <env>]"),
    ("/deploy", "web a b", "/deploy <service> [ref] [to <env>]"),
    ("/deploy", "web to", "/deploy <service> [ref] [to <env>]"),
    ("/deploy", "web to staging now", "/deploy <service> [ref] [to <env>]"),
    ("/deploy", "Web!", "/deploy <service> [ref] [to <env>]"),
    ("/rollback", "web staging extra", "/rollback <service> [env] [to <release>]"),
    ("/lock", "web", "/lock <service> [env] <reason>"),
    ("/unlock", "web staging now", "/unlock <service> [env]"),
    ("/status", "web api", "/status [service]"),
    ("/history", "", "/history <service>"),
    ("/freeze", "", "/freeze <reason>"),
    ("/unfreeze", "now", "/unfreeze"),
    ("/mainline", "deploy", "/deploy <service> [ref] [to <env>]"),
])
def test_wrong_usage_gives_the_usage_line(command, text, usage):
    with pytest.raises(UsageError) as caught:
        parse_command(command, text)
    assert f"Usage: `{usage}`" in str(caught.value)


def test_an_unknown_command_lists_every_command():
    with pytest.raises(UsageError) as caught:
        parse_command("/mainline", "launch web")
    assert "Unknown command `launch`" in str(caught.value)
    assert "/deploy <service> [ref] [to <env>]" in str(caught.value)
    assert "/unfreeze" in str(caught.value)


def test_lock_takes_its_environment_from_the_services_environments():
    config = parse_config(WEB)
    assert resolve(parse_command("/lock", "web staging flaky tests"), config) == Command(
        "lock", service="web", environment="staging", reason="flaky tests")
    assert resolve(parse_command("/lock", "web flaky tests"), config) == Command(
        "lock", service="web", environment="production", reason="flaky tests")
    with pytest.raises(UsageError, match="Give a reason"):
        resolve(parse_command("/lock", "web staging"), config)


def test_production_is_the_default_environment():
    config = parse_config(WEB)
    assert resolve(parse_command("/deploy", "web"), config).environment == "production"
    assert resolve(parse_command("/deploy", "web to staging"), config).environment == "staging"
