"""What `mainline migrations check` reads: migration files on disk, or the migrations in a git diff.

The classification itself is `checks.migrations`; this only finds the files and their text."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bot.config import CONFIG_PATH, ConfigError, parse_config
from checks.inputs import MigrationFinding
from checks.migrations import classify_migration, detect_migrations
from checks.migrations.classify import refused
from checks.migrations.limits import MAX_BYTES


class MigrationsCheckError(Exception):
    """The files or the diff to check cannot be read; the message says which and why."""


def findings_in_files(paths: tuple[Path, ...] | list[Path]) -> list[MigrationFinding]:
    """Classify each file as given: the person named it, so it is checked whatever its path."""
    if not paths:
        raise MigrationsCheckError("name migration files, or --base SHA to check the migrations changed since SHA")
    findings = []
    for path in paths:
        try:
            with Path(path).open("rb") as handle:
                # One byte over the limit is enough for the classifier to refuse it; never more.
                data = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise MigrationsCheckError(f"cannot read {path}: {exc.strerror or exc}") from None
        findings.append(classify_migration(str(path), data.decode("utf-8", errors="replace")))
    return findings


def findings_in_diff(worktree: Path, base: str, paths: tuple[Path, ...] | list[Path] = ()) -> list[MigrationFinding]:
    """The migrations added or changed between `base` and HEAD, as the deploy gate sees them:
    the built-in layouts plus `migrations.paths` from the repo's deploy.yml at HEAD."""
    changed = _git(worktree, "diff", "--name-only", "-z", "--diff-filter=d", base, "HEAD", "--",
                   *map(str, paths)).split("\0")
    found = detect_migrations([p for p in changed if p], _extra_globs(worktree))
    findings = []
    for path in found:
        size = int(_git(worktree, "cat-file", "-s", f"HEAD:{path}").strip() or 0)
        if size > MAX_BYTES:  # never read into memory what the classifier refuses anyway
            findings.append(refused(path, f"the file is {size} bytes, over the {MAX_BYTES} bytes read"))
        else:
            findings.append(classify_migration(path, _git(worktree, "show", f"HEAD:{path}")))
    return findings


def _extra_globs(worktree: Path) -> list[str]:
    try:
        text = _git(worktree, "show", f"HEAD:{CONFIG_PATH}")
    except MigrationsCheckError:
        return []  # no deploy.yml: the built-in layouts only
    try:
        return list(parse_config(text).migrations.paths)
    except ConfigError:
        return []  # `mainline config validate` is the place to hear about that


def _git(worktree: Path, *args: str) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=worktree, capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise MigrationsCheckError(f"cannot run git: {exc}") from None
    if proc.returncode != 0:
        raise MigrationsCheckError(f"git {' '.join(args[:2])} failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def render_findings(findings: list[MigrationFinding]) -> list[str]:
    """Each migration with its class, each reason, and under a contract reason the rule it breaks
    and the safe way to make the change."""
    lines: list[str] = []
    for finding in findings:
        lines.append(f"{finding.path}: {finding.kind}")
        for reason in finding.reasons:
            lines.append(f"  {reason}")
            rule = finding.rule_for(reason)
            if rule is not None:
                lines.append(f"    rule: {rule.rule}")
                lines.append(f"    safe way: {rule.safe}")
    return lines

