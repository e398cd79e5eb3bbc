"""Which GitHub and Slack adapters the settings switch on. Each is optional: with neither
configured, deploys still run and the event log still tells the story."""

from __future__ import annotations

import logging

from bot.settings import Settings

log = logging.getLogger("mainline.reporting")


def github_host(settings: Settings):
    """The GitHub adapter, when a token or an app is configured."""
    if settings.github_token is None and settings.github_app_id is None:
        return None
    from bot.infra.github.client import GitHubAdapter, GitHubConfig

    secret = lambda s: s.get_secret_value() if s is not None else None  # noqa: E731
    return GitHubAdapter(GitHubConfig(
        base_url=settings.github_api_url.rstrip("/"),
        token=secret(settings.github_token),
        app_id=settings.github_app_id,
        private_key=secret(settings.github_app_private_key),
        installation_id=settings.github_app_installation_id,
        write_interval=settings.github_write_interval,
    ))


def slack_for(settings: Settings, store):
    """The Slack reporter (deploy cards, notifications, replies), when a bot token is set."""
    if settings.slack_bot_token is None:
        return None
    from bot.infra.db.cards import StoreCardStore
    from bot.notify.slack_reporter import slack_reporter

    return slack_reporter(settings.slack_bot_token.get_secret_value(), settings.slack_api_url,
                          settings.slack_channel, settings.slack_user_map(), StoreCardStore(store),
                          public_url=settings.public_url)


def reporters_for(settings: Settings, github=None, slack=None, store=None, git=None) -> list:
    reporters: list = []
    if github is not None:
        from bot.notify.github_reporter import GitHubReporter

        reporters.append(GitHubReporter(github, dashboard_url=settings.public_url,
                                        mutex=getattr(store, "mutex", None)))
    if slack is not None:
        reporters.append(slack)
    release = release_reporter(settings, github, slack, store, git)
    if release is not None:
        reporters.append(release)
    if store is not None and git is not None:
        from bot.notify.dora_reporter import LeadTimeReporter

        # Acts only on a `live` transition, which only the worker makes.
        reporters.append(LeadTimeReporter(store, git))
    if github is not None and store is not None and git is not None:
        from bot.culprit.telling import CulpritReporter

        # The culprit of a bisected release, and the PRs held back with it, told on their PRs.
        reporters.append(CulpritReporter(github, store, git))
    return reporters


def release_reporter(settings: Settings, github=None, slack=None, store=None, git=None):
    """Release notes by email (MAINLINE_EMAIL_SENDER) and on Slack, when either is configured.
    `store` and `git` should be the pipeline's; made from the settings when not given."""
    if settings.email_sender is None and slack is None:
        return None
    from bot.notify.release_reporter import ReleaseReporter, ReleaseSources

    if store is None:
        from bot.infra.db.store import Store

        store = Store(settings.database_url)
    if git is None:
        from bot.infra.git import GitClient
        from bot.infra.github.git_auth import credentials_for

        token = settings.github_token.get_secret_value() if settings.github_token else None
        git = GitClient(settings.state_dir / "git", token=token, credentials=credentials_for(settings, github))
    mailer = None
    if settings.email_sender is not None:
        from bot.infra.aws.ses import SesMailer

        mailer = SesMailer(None, settings.email_sender)
    return ReleaseReporter(ReleaseSources(store, git, github, web_url=settings.github_web_base()),
                           mailer=mailer, slack=slack,
                           slack_channel=settings.slack_channel)


def pull_request_reverter(github, settings: Settings):
    """Revert by pull request (the default `rollback.revert`), bound to the pipeline's call."""
    from bot.infra.github.revert import PullRequestReverter, RevertRequest

    workdir = settings.state_dir / "revert"
    workdir.mkdir(parents=True, exist_ok=True)
    reverter = PullRequestReverter(github, workdir=workdir)

    def revert(service, deploy, commits, reason, evidence: str = ""):
        return reverter.revert(RevertRequest(repo=service.repo, branch=service.branch, commits=tuple(commits),
                                             pull_numbers=tuple(deploy.pull_numbers or ()), reason=reason,
                                             evidence=evidence, environment=deploy.environment,
                                             deploy_id=deploy.id))

    return revert
