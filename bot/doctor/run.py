"""Every doctor check, in the order a person sets things up."""

from __future__ import annotations

from bot.doctor import aws as aws_checks
from bot.doctor import github, services
from bot.doctor import hosts as host_checks
from bot.doctor.findings import Finding, guarded


def run_doctor(settings, repos: list[str], aws: bool | None = None,
               docker_hosts: list[str] | None = None, tls_dirs: dict[str, list[str]] | None = None,
               only: tuple[str, ...] = ()) -> list[Finding]:
    """Every check, in the order a person sets things up (only those of `only`, when given: an
    area, or area-what such as docker-hosts)."""
    from bot.wiring import _scrub

    def scrub(text: str) -> str:
        return _scrub(text, settings)

    findings: list[Finding] = []
    for area, what, check, fix in (
        ("database", "schema", lambda: services.database(settings), "run `mainline db upgrade`"),
        ("github", "credentials", lambda: github.checks(settings, repos), "see docs/self-hosting.md#github"),
        ("slack", "bot token", lambda: services.slack(settings), "see docs/self-hosting.md#slack"),
        ("registry", settings.registry, lambda: services.registry(settings), "see docs/self-hosting.md#registry"),
        ("docker", "engine", lambda: services.docker_hosts(docker_hosts or []),
         "see docs/self-hosting.md#docker-hosts"),
        ("docker", "hosts", lambda: host_checks.checks(settings, tls_dirs or {}, scrub),
         "see docs/self-hosting.md#several-docker-hosts"),
        ("haproxy", "binary", services.haproxy, "apt-get install haproxy on the Docker host"),
        ("aws", "identity", lambda: aws_checks.checks(aws), "see docs/self-hosting.md#aws"),
    ):
        if only and area not in only and f"{area}-{what}" not in only:
            continue
        findings.extend(guarded(area, what, check, scrub, fix))
    return findings
