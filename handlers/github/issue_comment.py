"""`issue_comment` created on a pull request: the PR commands `/deploy <env>`, `/rollback [env]`,
`/lock [env] <reason>` and `/unlock [env]`.

Thin: parse, authorise, call the pipeline, answer on the PR (a reaction on the command and one
reply, found again by a marker, so a redelivered comment is answered once)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from bot import authority
from bot.config import CONFIG_PATH, ConfigError, DeployConfig
from bot.domain import DeployRequest
from bot.domain.github import PullRequest
from bot.errors import AuthError, MainlineError
from bot.ports import GitHost
from bot.routing import Router
from handlers.commands import (
    PR_COMMANDS,
    CommandPipeline,
    UsageError,
    default_environment,
    environment_problem,
    lock_words,
)
from handlers.github.events import Repository, User

log = logging.getLogger("mainline.handlers.issue_comment")
router = Router()

# Only the first line counts, and only our words: `/cc @someone` or prose is not a command.
COMMAND = re.compile(r"^/(deploy|rollback|lock|unlock|promote|abort)(?:\s+(.*))?$", re.IGNORECASE)
REACTION = {"done": "+1", "refused": "-1", "failed": "confused"}


# -- the edge: only the fields we use ---------------------------------------------------------


class _Edge(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Issue(_Edge):
    number: int
    pull_request: dict | None = None  # present only when the issue is a pull request


class IssueComment(_Edge):
    id: int
    body: str | None = None
    user: User


class IssueCommentEvent(_Edge):
    action: str
    issue: Issue
    comment: IssueComment
    repository: Repository
    sender: User


# -- parsing (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PrCommand:
    name: str
    words: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join((f"/{self.name}", *self.words))


@dataclass(frozen=True)
class Resolved:
    environment: str
    reason: str = ""


class Refused(MainlineError):
    """The person may not, or the pull request cannot, do this; the message says why."""


def parse_pr_command(body: str) -> PrCommand | None:
    """The command on the comment's first non-empty line, or None when it holds none."""
    first = next((line.strip() for line in body.splitlines() if line.strip()), "")
    match = COMMAND.match(first)
    if match is None:
        return None
    return PrCommand(match.group(1).lower(), tuple((match.group(2) or "").split()))


def resolve(command: PrCommand, config: DeployConfig) -> Resolved:
    """Which environment the command is about (and the lock's reason); UsageError when unclear."""
    words = command.words
    if command.name == "deploy":
        if len(words) != 1:
            raise PR_COMMANDS.misuse("deploy", "Name the environment.")
        resolved = Resolved(words[0])
    elif command.name == "lock":
        environment, reason = lock_words(words, config, PR_COMMANDS)
        resolved = Resolved(environment or default_environment(config), reason)
    else:
        if len(words) > 1:
            raise PR_COMMANDS.misuse(command.name)
        resolved = Resolved(words[0] if words else default_environment(config))
    problem = environment_problem(config, resolved.environment, show=lambda e: f"`{e}`")
    if problem:
        raise Refused(problem)
    return resolved


# -- answering ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    """The command comment and where to answer it."""

    github: GitHost
    repo: str
    number: int
    comment_id: int
    login: str

    @property
    def who(self) -> str:
        return f"github:{self.login}"

    @property
    def marker(self) -> str:
        return f"<!-- mainline:command:{self.comment_id} -->"

    def answered(self) -> bool:
        """A command acts once: the delivery's GUID is not signed, so a signed body posted again
        under a new one must find the bot's answer to its comment and change nothing."""
        bot = self.github.bot_login()
        return any(c.user_login == bot and c.body.startswith(self.marker)
                   for c in self.github.comments(self.repo, self.number))

    def answer(self, kind: str, text: str) -> str:
        """React to the command and reply once (edited in place when told again)."""
        self.github.add_reaction(self.repo, self.comment_id, REACTION[kind])
        self.github.upsert_comment(self.repo, self.number, self.marker, f"@{self.login} {text}")
        return text


# -- the handler ----------------------------------------------------------------------------------


@router.register("issue_comment", "created")
def on_issue_comment_created(payload: dict, pipeline) -> str:
    event = IssueCommentEvent.model_validate(payload)
    login = event.comment.user.login
    if event.issue.pull_request is None:
        return f"ignored: #{event.issue.number} is an issue, not a pull request"
    if login.endswith("[bot]") or event.sender.login.endswith("[bot]"):
        return f"ignored: comment by {login}"
    command = parse_pr_command(event.comment.body or "")
    if command is None:
        return "ignored: not a command"
    github = getattr(pipeline.w, "github", None)
    if github is None:
        log.warning("%s on %s#%d: no GitHub client configured to answer with", command.text,
                    event.repository.full_name, event.issue.number)
        return f"ignored {command.text}: no GitHub client (GITHUB_TOKEN or a GitHub App) to answer with"
    talk = Conversation(github, event.repository.full_name, event.issue.number, event.comment.id, login)
    if talk.answered():
        return f"ignored: {command.text} on #{talk.number} was already answered (a delivery replayed)"
    outcome = run_command(pipeline, talk, event.repository, command)
    return f"{command.text} by {talk.who} on #{talk.number}: {outcome}"


def run_command(pipeline, talk: Conversation, repository: Repository, command: PrCommand) -> str:
    if not talk.github.permission(talk.repo, talk.login).can_write:
        return "refused: " + talk.answer("refused", f"`{command.text}` needs write permission on "
                                                    f"{talk.repo}, which you do not have.")
    pull = talk.github.get_pull(talk.repo, talk.number)
    try:
        service, clone_url, config = service_of(pipeline, repository)
        job = Job(pipeline, talk, service, clone_url, config, resolve(command, config), pull)
        authorise(job, command)
        done = ACTIONS[command.name](job)
    except (Refused, UsageError, ConfigError) as exc:  # the person can fix these
        return "refused: " + talk.answer("refused", f"`{command.text}`: {exc}")
    except MainlineError as exc:
        return "failed: " + talk.answer("failed", f"`{command.text}` did not go through: {exc}")
    return "done: " + talk.answer("done", done)


@dataclass(frozen=True)
class Job:
    """One authorised-or-not command, with everything its action needs."""

    pipeline: CommandPipeline
    talk: Conversation
    service: str
    clone_url: str
    config: DeployConfig  # as on the production branch
    target: Resolved
    pull: PullRequest


def service_of(pipeline, repository: Repository) -> tuple[str, str, DeployConfig]:
    """The service this repository deploys (bound when first seen), its clone URL, and its
    config as the production branch head has it: never the PR's own, or a PR could name
    another repository's service, or make its author a deployer."""
    known = pipeline.store.services_of_repo(repository.full_name)
    if known:
        service = max(known, key=lambda s: s.id)  # a renamed service: the newest name
    else:
        service = authority.adopt(pipeline, repository.full_name, repository.default_branch)
    return service.name, service.clone_url, pipeline.service_config(service.name)


def refuse_fork(pull, repo: str) -> None:
    """A fork's code is not in this repository and was not reviewed into it: never deploy it."""
    if pull.head_repo != repo:
        # A deleted fork's head repository is null: still not this repository's code.
        source = f"the fork `{pull.head_repo}`" if pull.head_repo else "a fork that no longer exists"
        raise Refused(f"this pull request comes from {source}; a fork's code is not deployed. "
                      f"Push the branch to {repo} to deploy it.")


def authorise(job: Job, command: PrCommand) -> None:
    env = job.target.environment
    try:
        job.pipeline.authorise(job.service, env, job.talk.who, config=job.config)
    except AuthError:
        listed = ", ".join(f"`{d}`" for d in job.config.environments[env].deployers) or "nobody"
        why = (f"you are not a deployer of {job.service} in {env}: `{CONFIG_PATH}` on "
               f"`{job.config.branch}` lists {listed}.")
        job.pipeline.record_event(job.service, env, "refused", f"{job.talk.who} may not {command.text}: {why}",
                                  by=job.talk.who)
        raise Refused(why) from None


def _deploy(job: Job) -> str:
    env, pull, talk = job.target.environment, job.pull, job.talk
    refuse_fork(pull, talk.repo)
    if not pull.merged and authority.takes_branch(job.config, env, pull.head_ref):
        job.pipeline.request(DeployRequest(talk.repo, job.clone_url, f"refs/heads/{pull.head_ref}", pull.head_sha,
                                           environment=env, requested_by=talk.who, manual=True,
                                           pull_numbers=(talk.number,)))
        return f"queued `{pull.head_sha[:7]}` (`{pull.head_ref}`) for {env}. Progress shows in this pull request."
    if pull.merged and pull.merge_commit_sha:
        view = job.pipeline.request_deploy(job.service, env, pull.merge_commit_sha, talk.who)
        return f"queued the merge `{pull.merge_commit_sha[:7]}` for {env}: deploy #{view['id']} is {view['state']}."
    patterns = ", ".join(f"`{p}`" for p in job.config.environments[env].branches or [job.config.branch])
    # Production runs only what its branch holds: a PR gets there by merging, never before.
    raise Refused(f"{env} takes only {patterns}, and `{pull.head_ref}` is not one; merge #{talk.number} "
                  f"to ship it there.")


def _rollback(job: Job) -> str:
    env = job.target.environment
    view = job.pipeline.rollback(job.service, env, job.talk.who)
    return (f"rolling {job.service} back in {env}: `{view['sha'][:7]}` → `{(view['previous_sha'] or '')[:7]}` "
            f"(deploy #{view['id']}); its commits will be reverted on `{job.config.branch}`.")


def _lock(job: Job) -> str:
    env, reason = job.target.environment, job.target.reason
    job.pipeline.lock(job.service, env, job.talk.who, reason)
    return f"🔒 locked {job.service} in {env}: {reason}. Automatic deploys wait until `/unlock`."


def _unlock(job: Job) -> str:
    job.pipeline.unlock(job.service, job.target.environment, job.talk.who)
    return f"🔓 unlocked {job.service} in {job.target.environment}; queued deploys resume."


def _canary(job: Job, action: str) -> str:
    done = job.pipeline.canary(job.service, job.target.environment, action, job.talk.who)
    if action == "abort":
        return (f"aborting the canary of `{done['sha'][:7]}` in {done['environment']}: its weight goes to 0, "
                f"then it is rolled back and reverted on `{job.config.branch}`.")
    return f"promoting the canary of `{done['sha'][:7]}` in {done['environment']} to its next step."


ACTIONS = {"deploy": _deploy, "rollback": _rollback, "lock": _lock, "unlock": _unlock,
           "promote": lambda job: _canary(job, "promote"), "abort": lambda job: _canary(job, "abort")}
