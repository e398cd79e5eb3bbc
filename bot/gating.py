"""Fetch what each gate needs, then let `checks/` decide. The gates do no I/O; this does it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from bot.domain import GateResult, GateStatus, Lock, in_sync
from bot.errors import FileTooLargeError, MainlineError
from bot.release_gate import release_approval
from checks.depends_on import MAX_DEPENDS_ON, parse_depends_on, too_many_dependencies
from checks.evaluate import evaluate
from checks.inputs import Approval, CiInput, ContextState, DependencyState, GateInputs, LockInput, MigrationFinding
from checks.migrations import classify_migration, detect_migrations, rollback_allowed
from checks.migrations.classify import refused as refused_migration
from checks.migrations.limits import MAX_BYTES as MAX_MIGRATION_BYTES

log = logging.getLogger("mainline.gating")
# Migration files read and classified per gate pass or preview; the rest count as contract.
MAX_MIGRATIONS_READ = 50


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


class Gatekeeper:
    """The pre-build gates of one queued deploy: config, lock, window, CI, migrations, depends-on."""

    def __init__(self, github=None, clock=lambda: datetime.now(UTC)):
        self.github = github  # bot.ports.GitHost, or None when not configured
        self.clock = clock

    def __call__(self, pipeline, service, deploy) -> list[GateResult]:
        config = pipeline.authority_config(service)  # the production head decides, never the sha
        store = pipeline.store
        lock_row = store.lock_for(service.name, deploy.environment)
        lock = Lock(service.name, deploy.environment, lock_row.by, lock_row.reason) if lock_row else None
        forced = bool(deploy.manual and deploy.force_reason)
        live = store.live_release(service.id, deploy.environment)
        findings = self.migrations(pipeline, service, live.sha if live else None, deploy.sha, config)
        approval_row = store.approval(deploy.id, "migrations")
        inputs = GateInputs(
            environment=deploy.environment,
            now=self.clock(),
            config=config,
            lock=LockInput(lock=lock, manual=bool(deploy.manual), force=forced, reason=deploy.force_reason),
            window_override=deploy.force_reason if forced else None,
            ci=CiInput(statuses=self.ci_statuses(service.repo, deploy.sha, config),
                       pending_since=_aware(deploy.created_at)),
            migrations=findings,
            approval=Approval(approval_row.status, approval_row.by or "", approval_row.reason or "")
            if approval_row else None,
            dependencies=self.dependencies(pipeline, service, deploy, config),
        )
        results = evaluate(inputs, stage="pre-build")
        results += release_approval(store, deploy, config)  # `release: {approval: required}`
        for i, result in enumerate(results):
            if result.gate == "migrations" and result.status is GateStatus.WAIT:
                if approval_row is None:
                    store.request_approval(deploy.id, "migrations")
                # Only this side knows the deploy's id, which is what a person approves.
                results[i] = GateResult.wait(result.gate, f"{result.reason}; approve with `mainline approve "
                                             f"{deploy.id}` or reject with `mainline reject {deploy.id} --reason …`")
        return results

    def rollback_allowed(self, pipeline, service, deploy, config) -> tuple[bool, str]:
        """Never roll back automatically past a contract migration: a person decides."""
        return rollback_allowed(self.migrations(pipeline, service, deploy.previous_sha, deploy.sha, config))

    def ci_statuses(self, repo: str, sha: str, config) -> list[ContextState]:
        if not config.required_contexts or self.github is None:
            return []
        try:
            contexts = self.github.ci_contexts(repo, sha)
        except MainlineError as exc:
            log.warning("could not read CI statuses of %s@%s: %s", repo, sha[:12], exc)
            return []
        # A queued check run has no time yet; it is news as of now (and times must compare).
        return [ContextState(c.context, c.state, _aware(c.updated_at) or self.clock(), source=c.source)
                for c in contexts]

    def migrations(self, pipeline, service, base: str | None, tip: str, config) -> list:
        if not base or base == tip:
            return []
        git = pipeline.w.git
        paths = detect_migrations(git.changed_paths(service.clone_url, base, tip), config.migrations.paths)
        findings = []
        for path in paths[:MAX_MIGRATIONS_READ]:
            try:
                text = git.read_file(service.clone_url, tip, path, max_bytes=MAX_MIGRATION_BYTES)
            except FileTooLargeError as exc:  # never read whole: what is not read cannot be called safe
                findings.append(refused_migration(path, str(exc)))
                continue
            if text is not None:  # a deleted migration has nothing to classify
                findings.append(classify_migration(path, text))
        if len(paths) > MAX_MIGRATIONS_READ:
            # Bounded work per push: what is not read cannot be called safe.
            rest = len(paths) - MAX_MIGRATIONS_READ
            findings.append(MigrationFinding(paths[MAX_MIGRATIONS_READ], "contract", [
                f"{rest} more migration file(s) not read (at most {MAX_MIGRATIONS_READ} are): cannot tell, "
                "so treated as contract; ship them in smaller changes"]))
        return findings

    def dependencies(self, pipeline, service, deploy, config) -> list[DependencyState]:
        deps = [self._service_live(pipeline, name) for name in config.depends_on]
        texts = [pipeline.w.git.commit_message(service.clone_url, deploy.sha)]
        # A merge commit carries the PR's title, not its body, where `Depends-On:` lines usually are.
        for number in deploy.pull_numbers or ():
            body = self._pull_body(service.repo, number)
            if isinstance(body, DependencyState):
                deps.append(body)
            else:
                texts.append(body)
        refs: list = []
        for text in texts:
            refs += [ref for ref in parse_depends_on(text) if ref not in refs]
            if len(refs) > MAX_DEPENDS_ON:
                # Looked up, each would cost GitHub calls on every gate pass: refuse the list instead.
                return [*deps, too_many_dependencies(len(refs))]
        return deps + [self._ref_live(pipeline, ref) for ref in refs]

    def _pull_body(self, repo: str, number: int) -> str | DependencyState:
        """The body of `repo#number`, or, when it cannot be read, a dependency that is not met:
        better to wait than to deploy past a `Depends-On:` we could not see."""
        if self.github is None:
            return ""
        try:
            return self.github.get_pull(repo, number).body or ""
        except MainlineError as exc:
            return DependencyState(f"{repo}#{number}", False, f"could not read its Depends-On lines: {exc}")

    def _service_live(self, pipeline, name: str) -> DependencyState:
        """Whether `name` runs its production branch head in production (as `status` says it)."""
        store = pipeline.store
        try:
            svc = store.service(name)
        except MainlineError:
            return DependencyState(name, False, "Mainline does not know this service yet")
        known = any(env.name == "production" for env in store.environments(svc.id))
        live = store.live_release(svc.id, "production") if known else None
        if live is None:
            return DependencyState(name, False, "nothing live in production yet")
        if not in_sync(live.sha, svc.head_sha):
            return DependencyState(name, False, "its production branch has changes not yet live")
        return DependencyState(name, True)

    def _ref_live(self, pipeline, ref) -> DependencyState:
        services = pipeline.store.services_of_repo(ref.repo)
        if not services:
            return DependencyState(ref, False, f"{ref.repo} is not deployed by Mainline")
        if self.github is None:
            return DependencyState(ref, False, "cannot look the pull request up without GitHub access")
        try:
            pull = self.github.get_pull(ref.repo, ref.number)
        except MainlineError as exc:
            # A wrong number or a GitHub outage must show as a reason, not stop the driver.
            return DependencyState(ref, False, f"could not look it up on GitHub: {exc}")
        if not pull.merged or not pull.merge_commit_sha:
            return DependencyState(ref, False, "not merged yet")
        svc = services[0]
        live = pipeline.store.live_release(svc.id, "production")
        if live and pipeline.w.git.is_ancestor(svc.clone_url, pull.merge_commit_sha, live.sha):
            return DependencyState(ref, True)
        return DependencyState(ref, False, "merged, not live in production yet")
