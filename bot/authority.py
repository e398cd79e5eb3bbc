"""Who decides: the production branch head's `.github/deploy.yml` is the one authority over a
service. A pushed branch's own config is validated (a bad one gets a failing check) but decides
nothing: not the service, not its production branch, not who deploys, not where it runs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.config import CONFIG_PATH, ConfigError, ConfigProblem, DeployConfig
from bot.domain import DeployRequest
from bot.errors import AuthError, NotFoundError
from bot.globs import glob_match

log = logging.getLogger("mainline.authority")


@dataclass(frozen=True)
class Authority:
    """A service as its production branch head defines it."""

    service: Any  # a ServiceRecord (bot.ports): the store's row
    config: DeployConfig
    head: str  # the production branch head the config was read at


def production_branch(pipeline, req: DeployRequest) -> tuple[str, bool]:
    """The repository's production branch, and whether the repository is seen for the first
    time: the branch its service was bound with, else the repository's default branch as the
    repository says (GitHub's payload, else the remote's HEAD), never as a config claims."""
    known = pipeline.store.services_of_repo(req.repo)
    if known:
        return max(known, key=lambda s: s.id).branch, False
    default = req.default_branch or pipeline.w.git.default_branch(req.clone_url)
    if default is None:
        raise ConfigError([ConfigProblem(None, "branch", f"{req.repo} names no default branch; "
                                                         "Mainline binds a service only from it")])
    return default, True


def authority_for(pipeline, req: DeployRequest, branch: str, own: DeployConfig) -> Authority:
    """Bind (or find) the service and read its config at the production branch head. A pushed
    branch's own config (`own`) is used only when the push is that head."""
    prod_branch, first_sight = production_branch(pipeline, req)
    head = pipeline.w.git.head(req.clone_url, prod_branch)
    if head is None:
        raise NotFoundError(f"{req.repo} has no branch {prod_branch}")
    config = own if head == req.sha else pipeline.config_at(req.clone_url, head)
    if first_sight and config.branch != prod_branch:
        # A branch whose config names itself production must not become production.
        raise ConfigError([ConfigProblem(None, "branch", f"the production branch must be the repository's "
                                                         f"default branch `{prod_branch}`, not `{config.branch}`")])
    if config.branch != prod_branch and pipeline.w.git.head(req.clone_url, config.branch) is None:
        # A merged change of `branch:` would move production to a branch that is not there: every
        # later push would then find nothing to deploy. Say so on the commit, and stay put.
        raise ConfigError([ConfigProblem(None, "branch", f"the production branch would move from `{prod_branch}` "
                                                         f"to `{config.branch}`, which {req.repo} does not have; "
                                                         f"push `{config.branch}` first, or keep `branch: "
                                                         f"{prod_branch}`")])
    check_listen_free(pipeline, config)
    # A merged change of `branch:` moves the production branch; it takes effect once merged.
    service = pipeline.store.upsert_service(config.service, req.repo, req.clone_url, config.branch,
                                            config_text=config.model_dump_json(), config_sha=head)
    if prod_branch == config.branch:
        pipeline.store.set_head(service.id, head)
    return Authority(service, config, head)


def _claims(config: DeployConfig) -> dict[str, tuple[str, str]]:
    """What each environment holds alone, with the key that names it: its load balancer address,
    each ECS service and load balancer part it rolls out to (another repository naming them would
    deploy its code into them), and each secret and TLS certificate it reads (another repository
    naming them would hand their values to its own app)."""
    held: dict[str, tuple[str, str]] = {}
    for name, env in config.environments.items():
        if env.target == "docker":
            held[env.listen] = (name, "listen")
            for ref in env.secrets.values():
                held[f"the secret {ref}"] = (name, "secrets")
            if env.tls is not None:
                held[f"the TLS certificate file:{env.tls.certificate}"] = (name, "tls")
        if env.target == "ecs" and env.ecs is not None:
            for unit in env.ecs.units():
                cluster, service = (v.rsplit("/", 1)[-1] for v in (env.ecs.cluster, unit.service))
                held[f"the ECS service {service} of cluster {cluster} in {env.ecs.region}"] = (name, "ecs")
            # The load balancer an ECS rollout registers with or switches (blue-green on two target groups).
            for field in ("target_group_arn", "alternate_target_group_arn", "listener_arn"):
                if arn := getattr(env.ecs, field, None):
                    held[f"the {field.removesuffix('_arn').replace('_', ' ')} {arn}"] = (name, "ecs")
    return held


def check_listen_free(pipeline, config: DeployConfig) -> None:
    """An address, an ECS service, a secret or a certificate belongs to the one service that named
    it first: another repository's config naming it gets a failing check naming the owner."""
    mine = _claims(config)
    for other in pipeline.store.services():
        if other.name == config.service or not other.config_text:
            continue
        try:
            theirs = _claims(DeployConfig.model_validate_json(other.config_text))
        except ValueError:
            continue
        for what, (environment, _) in theirs.items():
            if what in mine:
                env, key = mine[what]
                address = key == "listen"
                raise ConfigError([ConfigProblem(None, f"environments.{env}.{key}",
                                                 f"{what} belongs to {other.name}/{environment} "
                                                 f"(from {other.repo}); choose another "
                                                 f"{'address' if address else 'one'}")])


def follows_production(config: DeployConfig, environment: str) -> bool:
    env = config.environments[environment]
    return not env.branches or env.branches == [config.branch]


def check_takes(pipeline, authority: Authority, environment: str, branch: str, sha: str) -> None:
    """Refuse a sha an environment must not run: production-following environments run only
    commits on the production branch; others only branches the production config lets in."""
    config = authority.config
    if environment not in config.environments:
        raise NotFoundError(f"{config.service} has no environment {environment!r} in {CONFIG_PATH}")
    if follows_production(config, environment):
        if sha != authority.head and not pipeline.w.git.is_ancestor(authority.service.clone_url, sha, authority.head):
            raise AuthError(f"{sha[:12]} is not on {config.branch}: {environment} runs only what was merged there")
        return
    if not takes_branch(config, environment, branch):
        raise AuthError(f"{environment} does not take the branch {branch!r} ({CONFIG_PATH} on {config.branch})")


def takes_branch(config: DeployConfig, environment: str, branch: str) -> bool:
    """Whether the production config lets `environment` run `branch` (globs, linear time)."""
    patterns = config.environments[environment].branches or [config.branch]
    return any(glob_match(branch, pattern) for pattern in patterns)


def adopt(pipeline, repo: str, default_branch: str | None):
    """First sight of a repository through a command: bind its service from the config on its
    default branch head (the only branch that may name the production branch)."""
    clone_url = pipeline.clone_url_for(repo)
    branch = default_branch or "master"
    head = pipeline.w.git.head(clone_url, branch)
    if head is None:
        raise NotFoundError(f"{repo} has no branch {branch}")
    config = pipeline.config_at(clone_url, head)
    req = DeployRequest(repo, clone_url, f"refs/heads/{branch}", head, default_branch=branch)
    return authority_for(pipeline, req, branch, config).service
