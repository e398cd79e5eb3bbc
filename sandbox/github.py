"""A local GitHub for the demo and tests: REST like api.github.com, git over smart HTTP, webhooks.

Never used by production code paths. Everything it serves and sends is checked against GitHub's
published contracts when `validate` is on; what breaks them lands in `.violations`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path

from .github_api import BOT_LOGIN, SandboxError
from .github_app import Apps, Credential
from .github_events import Events
from .github_git import ZERO_SHA, BareRepo, GitError, MergeConflictError
from .github_manifest import Manifests, with_manifests
from .github_oauth import OAuthStandIn, with_oauth
from .github_rest import build_app
from .github_shapes import Shapes, person_for
from .github_state import Comment, Pull, Repo, now_iso
from .github_webhooks import Delivery, WebhookSender
from .serving import LocalServer

__all__ = ["GitHubSandbox", "SandboxError"]

log = logging.getLogger(__name__)


class GitHubSandbox:
    """The stand-in: state on disk under `state_dir`, served by `.start()` on 127.0.0.1."""

    def __init__(self, state_dir: Path, webhook_url: str | None = None,
                 webhook_secret: str | None = None, validate: bool = True):
        self.state_dir = Path(state_dir)
        self.git_root = self.state_dir / "git"
        self.git_root.mkdir(parents=True, exist_ok=True)
        self.validate = validate
        self.violations: list[str] = []
        self.repos: dict[str, Repo] = {}
        # Who each token acts as. A token not listed is the app's bot user, so the bot's own
        # token needs no set-up; tests give other people tokens of their own.
        self.tokens: dict[str, str] = {}
        self.url = "http://127.0.0.1"
        self.shapes = Shapes(self.url)
        self.events = Events(self.shapes)
        self._webhooks = WebhookSender(webhook_url, webhook_secret, self.report_violation, validate)
        # One lock for state and ref moves: GitHub serialises writes to a repository too.
        self.lock = threading.RLock()
        self._server: LocalServer | None = None
        self.oauth = OAuthStandIn()  # GitHub's OAuth web flow: oauth.register_app(id, secret, callback)
        # GitHub Apps: apps.register(...), apps.install(...), and the App-manifest flow.
        self.apps = Apps()
        self.manifests = Manifests(self.apps)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, host: str = "127.0.0.1", port: int = 0) -> GitHubSandbox:
        app = with_manifests(with_oauth(build_app(self), self.oauth, lambda: self.url), self.manifests)
        self._server = LocalServer(app, host, port, "sandbox-github")
        self.url = f"http://{host}:{self._server.port}"
        self.shapes.base = self.url
        self._webhooks.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._webhooks.stop()

    @property
    def webhook_url(self) -> str | None:
        return self._webhooks.url

    @webhook_url.setter
    def webhook_url(self, url: str | None) -> None:
        """Point webhooks elsewhere (the bot may start after the stand-in)."""
        self._webhooks.url = url

    @property
    def webhook_content_type(self) -> str:
        """`json`, or `form` (application/x-www-form-urlencoded, GitHub's default)."""
        return self._webhooks.content_type

    @webhook_content_type.setter
    def webhook_content_type(self, value: str) -> None:
        self._webhooks.content_type = value

    @property
    def deliveries(self) -> list[Delivery]:
        return self._webhooks.deliveries

    def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every webhook sent so far has been answered or has failed."""
        self._webhooks.flush(timeout)

    def login_for(self, token: str) -> str:
        try:
            return self.credential(token).login
        except SandboxError:
            return BOT_LOGIN

    def credential(self, token: str) -> Credential:
        """What a token may do: an App installation's, a person's, or (unknown) the bot's."""
        return self.apps.credential(token, self.tokens, BOT_LOGIN)

    def report_violation(self, message: str) -> None:
        log.error("GitHub contract violation: %s", message)
        self.violations.append(message)

    # -- repositories and git -------------------------------------------------------------

    def repo(self, full_name: str) -> Repo:
        try:
            return self.repos[full_name]
        except KeyError:
            raise SandboxError(404, "Not Found") from None

    def create_repo(self, owner: str, name: str, files: Mapping[str, bytes | str],
                    branch: str = "master",
                    collaborators: dict[str, str] | None = None, private: bool = False) -> Repo:
        """Create `owner/name` with one commit holding `files` on `branch` (no webhook). A private
        repository refuses git to anyone without a credential that may read it."""
        git = BareRepo.init(self.git_root / owner / f"{name}.git", branch)
        repo = Repo(owner, name, git, branch,
                    dict(collaborators if collaborators is not None else {"octocat": "admin"}), private=private)
        sha = git.write_commit([], files, "Initial commit", person_for(owner))
        git.update_ref(f"refs/heads/{branch}", sha)
        with self.lock:
            self.repos[repo.full_name] = repo
        return repo

    def head(self, full_name: str, branch: str) -> str:
        sha = self.repo(full_name).git.branches().get(branch)
        if sha is None:
            raise SandboxError(404, "Branch not found")
        return sha

    def push_commit(self, full_name: str, branch: str, files: Mapping[str, bytes | str | None],
                    message: str, author_login: str = "octocat") -> str:
        """Commit `files` (None deletes) on top of `branch` and send `push`, as a real push would."""
        repo = self.repo(full_name)
        with self.lock:
            before = repo.git.branches()
            parent = before.get(branch)
            sha = repo.git.write_commit([parent] if parent else [], files, message,
                                        person_for(author_login))
            repo.git.update_ref(f"refs/heads/{branch}", sha, parent)
        self.refs_changed(repo, before, author_login)
        return sha

    def create_branch(self, full_name: str, branch: str, from_sha: str) -> None:
        repo = self.repo(full_name)
        with self.lock:
            before = repo.git.branches()
            if branch in before:
                raise SandboxError(422, "Reference already exists")
            repo.git.update_ref(f"refs/heads/{branch}", from_sha)
        self.refs_changed(repo, before, "octocat")

    def refs_changed(self, repo: Repo, before: dict[str, str], pusher: str) -> None:
        """Send `push` for every branch that moved since `before`; follow open PR heads."""
        after = repo.git.branches()
        with self.lock:
            repo.pushed_at = now_iso()
            for pull in repo.pulls.values():
                if pull.state == "open":
                    pull.head_sha = after.get(pull.head, pull.head_sha)
                    pull.base_sha = after.get(pull.base, pull.base_sha)
        for branch in sorted(set(before) | set(after)):
            old, new = before.get(branch, ZERO_SHA), after.get(branch, ZERO_SHA)
            if old != new:
                payload = self.events.push(repo, f"refs/heads/{branch}", old, new, pusher)
                self._webhooks.send("push", "push$event", payload)

    # -- pull requests ----------------------------------------------------------------------

    def open_pull(self, full_name: str, head: str, base: str, title: str, body: str = "",
                  user: str = "octocat", draft: bool = False) -> int:
        repo = self.repo(full_name)
        with self.lock:
            branches = repo.git.branches()
            if head not in branches or base not in branches:
                raise SandboxError(422, "Validation Failed")
            if branches[head] == branches[base] or not repo.git.commits_between(
                    branches[base], branches[head]):
                raise SandboxError(422, f"No commits between {base} and {head}")
            if any(p.state == "open" and (p.head, p.base) == (head, base) for p in repo.pulls.values()):
                raise SandboxError(422, f"A pull request already exists for {repo.owner}:{head}.")
            pull = Pull(repo.next_number(), title, body or "", user, head, base,
                        branches[head], branches[base], draft=draft)
            repo.pulls[pull.number] = pull
        self._webhooks.send("pull_request", "pull_request$opened",
                            self.events.pull_request(repo, pull, "opened", user))
        return pull.number

    def pull(self, full_name: str, number: int) -> Pull:
        pull = self.repo(full_name).pulls.get(number)
        if pull is None:
            raise SandboxError(404, "Not Found")
        return pull

    def merge_pull(self, full_name: str, number: int, merged_by: str = "octocat",
                   expected_head_sha: str | None = None, commit_title: str | None = None,
                   commit_message: str | None = None) -> str:
        """Merge a PR with a real merge commit on its base; raise SandboxError as GitHub refuses."""
        repo = self.repo(full_name)
        with self.lock:
            pull = self.pull(full_name, number)
            if pull.state != "open":
                raise SandboxError(405, "Pull Request is not mergeable")
            if pull.draft:
                raise SandboxError(405, "Pull Request is still a draft")
            if expected_head_sha and expected_head_sha != pull.head_sha:
                raise SandboxError(409, "Head branch was modified. Review and try the merge again.")
            before = repo.git.branches()
            base_sha = before[pull.base]
            title = commit_title or f"Merge pull request #{number} from {repo.owner}/{pull.head}"
            message = f"{title}\n\n{commit_message if commit_message is not None else pull.title}"
            try:
                sha = repo.git.merge(base_sha, pull.head_sha, message, person_for(merged_by))
            except MergeConflictError:
                raise SandboxError(405, "Pull Request is not mergeable") from None
            try:
                repo.git.update_ref(f"refs/heads/{pull.base}", sha, base_sha)
            except GitError:
                raise SandboxError(409, "Base branch was modified. Review and try the merge again.") from None
            pull.state, pull.merged, pull.merged_by = "closed", True, merged_by
            pull.merged_at = pull.closed_at = pull.updated_at = now_iso()
            pull.merge_commit_sha, pull.base_sha = sha, base_sha
        self.refs_changed(repo, before, merged_by)
        self._webhooks.send("pull_request", "pull_request$closed",
                            self.events.pull_request(repo, pull, "closed", merged_by))
        return sha

    def close_pull(self, full_name: str, number: int, closed_by: str = "octocat") -> None:
        """Close an open PR unmerged, and send `pull_request` closed."""
        repo = self.repo(full_name)
        with self.lock:
            pull = self.pull(full_name, number)
            if pull.state != "open":
                return
            pull.state, pull.closed_at = "closed", now_iso()
            pull.updated_at = pull.closed_at
        self._webhooks.send("pull_request", "pull_request$closed",
                            self.events.pull_request(repo, pull, "closed", closed_by))

    def mergeable(self, repo: Repo, pull: Pull) -> bool | None:
        if pull.state != "open":
            return None
        try:
            repo.git.merge(repo.git.branches()[pull.base], pull.head_sha, "probe",
                           person_for("octocat"))
        except MergeConflictError:
            return False
        return True

    # -- comments ----------------------------------------------------------------------------

    def comment(self, full_name: str, number: int, body: str, user: str = "octocat") -> int:
        """Post a comment on PR `number` and send `issue_comment` created; return its id."""
        repo = self.repo(full_name)
        with self.lock:
            pull = self.pull(full_name, number)
            comment = Comment(number, body, user)
            repo.comments[comment.id] = comment
        self._webhooks.send("issue_comment", "issue_comment$created",
                            self.events.issue_comment(repo, pull, comment))
        return comment.id

    def send_webhook(self, event: str, definition: str, payload: dict) -> Delivery:
        return self._webhooks.send(event, definition, payload)
