"""The one command vocabulary: what people can ask Mainline from a pull-request comment
(`/deploy staging`) and from Slack (`/deploy web to staging`), the usage lines, and the rules
both surfaces read the same way: which environment a command means when it names none, what an
unknown environment is told, and how `/lock` tells an environment from the first word of its
reason.

The surfaces differ in one thing: a PR comment's service is its repository's, so its commands
name none, while Slack's name it. Each surface parses its own text and answers in its own way;
what the words mean is decided here, once."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.config import DeployConfig
from bot.domain import DeployRequest
from bot.errors import MainlineError

# On a pull request: the service is the repository's.
PR_USAGE = {
    "deploy": "/deploy <environment>",
    "rollback": "/rollback [environment]",
    "lock": "/lock [environment] <reason>",
    "unlock": "/unlock [environment]",
    "promote": "/promote [environment]",  # the running canary goes on to its next step now
    "abort": "/abort [environment]",  # the running canary stops: rolled back and reverted
}
# In Slack: the same four naming their service, and the commands about every service.
SLACK_USAGE = {
    "deploy": "/deploy <service> [ref] [to <env>]",  # also `--dry-run`: what it would ship
    "rollback": "/rollback <service> [env] [to <release>]",
    "lock": "/lock <service> [env] <reason>",
    "unlock": "/unlock <service> [env]",
    "promote": "/promote <service> [env]",
    "abort": "/abort <service> [env]",
    "status": "/status [service]",
    "history": "/history <service>",
    "bisect": "/bisect <service> [env]",  # which commit of a release reverted in full broke it
    "freeze": "/freeze <reason>",
    "unfreeze": "/unfreeze",
    "help": "/help",
}


class CommandPipeline(Protocol):
    """The part of bot.pipeline.Pipeline that commands call, from a pull request or from Slack."""

    def request_deploy(self, service: str, environment: str, ref: str | None, by: str, *,
                       force: bool = False, reason: str | None = None) -> dict: ...

    def rollback(self, service: str, environment: str, by: str, to: str | None = None) -> dict: ...

    def lock(self, service: str, environment: str, by: str, reason: str) -> None: ...

    def unlock(self, service: str, environment: str, by: str) -> None: ...

    def freeze(self, by: str, reason: str) -> None: ...

    def unfreeze(self, by: str) -> None: ...

    def status(self, service: str | None = None) -> list[dict]: ...

    def deploys(self, service: str, limit: int = 20) -> list[dict]: ...

    def approve(self, deploy_id: int, by: str, approved: bool, reason: str = "",
                where: tuple[str, str] | None = None) -> None: ...

    def bisect(self, service: str, environment: str, by: str, good: str | None = None,
               bad: str | None = None) -> dict: ...

    def canary(self, service: str, environment: str, action: str, by: str) -> dict: ...

    def service_config(self, service: str) -> DeployConfig: ...

    def record_event(self, service: str, environment: str, kind: str, message: str, by: str | None = None) -> None: ...

    def authorise(self, service: str, environment: str, who: str, config: DeployConfig | None = None) -> None: ...

    def request(self, req: DeployRequest) -> list[dict]: ...


class UsageError(MainlineError):
    """The command was not typed the way its usage line says."""

    def __init__(self, name: str, message: str):
        self.name = name
        super().__init__(message)


@dataclass(frozen=True)
class Vocabulary:
    """The commands one surface takes, and how it explains them."""

    usage: Mapping[str, str]
    title: str

    def help_text(self) -> str:
        return f"{self.title}:\n" + "\n".join(f"• `{line}`" for line in self.usage.values())

    def misuse(self, name: str, why: str = "") -> UsageError:
        """`why`, then the usage line of `name` (every usage line when `name` is not a command)."""
        line = f"Usage: `{self.usage[name]}`" if name in self.usage else self.help_text()
        return UsageError(name, f"{why} {line}".strip())


PR_COMMANDS = Vocabulary(PR_USAGE, "Mainline commands on a pull request")
SLACK_COMMANDS = Vocabulary(SLACK_USAGE, "Mainline commands (also as `/mainline <command> …`)")


def default_environment(config: DeployConfig) -> str:
    """The environment a command means when it names none: production, else the first listed."""
    return "production" if "production" in config.environments else next(iter(config.environments))


def environment_problem(config: DeployConfig, environment: str, show: Callable[[str], str] = str) -> str | None:
    """Why `environment` is not one of the service's (`show` formats each known name), or None."""
    if environment in config.environments:
        return None
    known = ", ".join(show(e) for e in sorted(config.environments))
    return f"{config.service} has no environment `{environment}` (known: {known})."


def lock_words(words: Sequence[str], config: DeployConfig, vocabulary: Vocabulary) -> tuple[str | None, str]:
    """`/lock [environment] <reason>`: the first word is the environment only when the service has
    one by that name (so `/lock deploys are flaky` is all reason). Returns (environment or None,
    reason); a lock without a reason is a UsageError."""
    environment = words[0] if words and words[0] in config.environments else None
    reason = words[1:] if environment is not None else words
    if not reason:
        raise vocabulary.misuse("lock", "Give a reason.")
    return environment, " ".join(reason)
