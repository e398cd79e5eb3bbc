"""Red team (H9): weaknesses found in the hardened code, beyond issue 9's 22 attacks.

Each test plays the attack through the public surface and asserts what a safe Mainline would do.
The one still marked xfail(strict=True) stands, for a reason SECURITY.md gives (host networking
on this machine's Docker); the others were fixed and pass."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from sandbox.sample_app import write_sample_app
from tests.e2e.github_world import (
    COLLABORATORS,
    DEPLOY_YML,
    free_port,
    remove_app,
)
from tests.security.test_auth_attacks import (  # noqa: F401 - fixtures
    authorize,
    github,
    settings,
    signin,
    slack,
    start_sign_in,
    wired,
)


def take_deliveries(world) -> None:
    """Run the worker's intake (each recorded webhook through its handler) without driving
    deploys: a queued deploy is evidence enough, and no container needs to start for it."""
    for delivery_id in world.wired.store.unprocessed_deliveries(older_than=0):
        world.wired.process_delivery(delivery_id)


def deploys_of(world, sha: str) -> list[dict]:
    return [d for d in world.wired.pipeline.deploys(world.service, limit=50) if d["sha"] == sha] \
        if any(s.name == world.service for s in world.wired.store.services()) else []


# -- R1: first sight of a repository: a branch's own config names the production branch ----------


def test_redteam_first_push_of_a_branch_naming_itself_production_binds_nothing(world):
    master = world.head()
    evil_config = world.config_text().replace("branch: master", "branch: evil") \
        .replace('deployers: ["github:octocat"]', 'deployers: ["github:eve"]')
    files = dict(world.app_files("evil"), **{".github/deploy.yml": evil_config})
    world.sandbox.create_branch(world.repo, "evil", master)
    world.lose_webhooks()  # `git push origin evil` makes the branch and its commit in one push
    evil = world.sandbox.push_commit(world.repo, "evil", files, "take production", author_login="hubot")
    world.relay()
    take_deliveries(world)

    assert not [d for d in deploys_of(world, evil) if d["environment"] == "production"], \
        "an unreviewed branch's sha was queued for production"
    bound = [s for s in world.wired.store.services() if s.repo == world.repo]
    assert all(s.branch == "master" for s in bound), [(s.name, s.branch) for s in bound]
    assert world.head() == master


# -- R2: a pull request from a deleted fork is not recognised as a fork ---------------------------------


def test_redteam_a_pull_request_from_a_deleted_fork_is_never_deployed(world, monkeypatch):
    from dataclasses import replace

    number = world.open_pr("feature/from-fork", {"fork.txt": "fork code\n"}, "From a fork", author="octocat")
    fork_sha = world.head("feature/from-fork")
    host = world.wired.pipeline.w.github
    real = host.get_pull

    def deleted_fork(repo, n):
        # What GitHub answers once the fork is gone: head.repo is null, head.ref and head.sha stay.
        return replace(real(repo, n), head_repo="", head_ref="feature/from-fork")

    monkeypatch.setattr(host, "get_pull", deleted_fork)
    world.lose_webhooks()  # a fork's pushes never reach the base repository's webhook
    world.sandbox.comment(world.repo, number, "/deploy staging", user="octocat")
    world.relay()
    take_deliveries(world)

    queued = deploys_of(world, fork_sha)
    assert queued == [], "a deleted fork's head was queued by /deploy"
    assert any("fork" in r for r in world.replies(number)), world.replies(number)


# -- R3: another repository's service binds the same `listen` and takes half the traffic --------------


def test_redteam_another_repository_cannot_listen_on_a_live_services_port(world):
    world.first_release()
    other = f"{world.service}x"
    with tempfile.TemporaryDirectory() as tmp:
        write_sample_app(Path(tmp), f"{other} hijack", listen=f"127.0.0.1:{world.port}")
        files = {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}
    files[".github/deploy.yml"] = DEPLOY_YML.format(service=other, port=world.port, staging_port=free_port())
    world.sandbox.create_repo("acme", other, files, collaborators=dict(COLLABORATORS))
    try:
        world.sandbox.push_commit(f"acme/{other}", "master", {"x.txt": "1\n"}, "go live", author_login="octocat")
        world.relay()
        world.work()
        answers = {requests.get(f"http://127.0.0.1:{world.port}/", timeout=5).text.strip() for _ in range(30)}
        assert answers == {f"{world.service} v1"}, f"{world.service}'s users were served {answers}"
    finally:
        remove_app(world.settings.state_dir, other)


# -- R4, R5: signing in --------------------------------------------------------------------------------


def _lands_on(location: str) -> str:
    """Where a browser goes: the WHATWG URL parser drops every ASCII tab and newline first."""
    return location.replace("\t", "").replace("\n", "").replace("\r", "")


def test_redteam_sign_in_never_sends_the_browser_to_another_host_through_a_tab(signin, github):
    query = start_sign_in(signin, github, next_path="/\t/evil.example/steal")
    landed = signin.get("/login/callback?" + urlencode(authorize(github, query)))

    assert landed.status_code == 302
    assert not _lands_on(landed.headers["Location"]).startswith("//"), landed.headers["Location"]


def test_redteam_sign_in_with_a_newline_in_next_is_never_a_500(signin, github, caplog):
    caplog.errors_expected = True  # the 500 logs its traceback; the assertion below is the point
    query = start_sign_in(signin, github, next_path="/\n/x")
    landed = signin.get("/login/callback?" + urlencode(authorize(github, query)))

    assert landed.status_code < 500, landed.get_data(as_text=True)[:200]


def test_redteam_a_stranger_with_a_github_account_cannot_read_the_board(signin, github):
    query = start_sign_in(signin, github, next_path="/api/deliveries")
    landed = signin.get("/login/callback?" + urlencode(authorize(github, query, login="mallory-stranger")))
    reads = [signin.get(path).status_code for path in ("/api/services", "/api/deliveries", "/metrics")]

    assert signin.get_cookie("mainline_session") is None or set(reads) <= {401, 403}, (landed.status_code, reads)


# -- R6: the app's containers share the host's network ------------------------------------------------


# A FROM-scratch busybox: its wget cannot resolve without NSS, but `nc` to an IP literal works.
# It reads the registry's catalog, then opens an upload into the service's own image repository.
def loot_dockerfile_cmd(service: str) -> str:
    ask = 'printf "{line}\\r\\nContent-Length: 0\\r\\n\\r\\n" | /bin/busybox nc -w 3 127.0.0.1 5000 > {out}; '
    return "CMD " + json.dumps([
        "/bin/busybox", "sh", "-c",
        ask.format(line="GET /v2/_catalog HTTP/1.0", out="/www/loot.txt")
        + ask.format(line=f"POST /v2/{service}/blobs/uploads/ HTTP/1.0", out="/www/write.txt")
        + "exec /bin/busybox httpd -f -p 127.0.0.1:$PORT -h /www"])


@pytest.mark.xfail(strict=True, reason="docker_target runs replicas with network_mode=host: a branch "
                   "deployed to staging (a branch pusher's unreviewed code) reaches the unauthenticated "
                   "registry (whose tags image_exists trusts to skip builds), every other service's "
                   "replicas and load balancers, the bot's port and, on a cloud host, the metadata "
                   "endpoint with the host's credentials")
def test_redteam_a_staging_branchs_container_cannot_reach_the_registry(world):
    # Staging on a port surely free (port + 1 may be some replica's), merged before Mainline looks.
    staging_port = free_port()
    config = world.config_text().replace(f"127.0.0.1:{world.port + 1}", f"127.0.0.1:{staging_port}")
    world.sandbox.push_commit(world.repo, "master", {".github/deploy.yml": config}, "Move staging")
    world.lose_webhooks()
    files = dict(world.app_files("loot"), **{".github/deploy.yml": config})
    dockerfile = files["Dockerfile"].decode()
    files["Dockerfile"] = "\n".join(loot_dockerfile_cmd(world.service) if line.startswith("CMD ") else line
                                    for line in dockerfile.splitlines()).encode() + b"\n"
    world.sandbox.create_branch(world.repo, "feature/loot", world.head())
    sha = world.sandbox.push_commit(world.repo, "feature/loot", files, "just a feature", author_login="hubot")
    world.relay()
    world.work()
    [staging] = [d for d in deploys_of(world, sha) if d["environment"] == "staging"]
    assert staging["state"] == "live", staging

    loot = requests.get(f"http://127.0.0.1:{staging_port}/loot.txt", timeout=5)
    wrote = requests.get(f"http://127.0.0.1:{staging_port}/write.txt", timeout=5)
    assert loot.status_code == 404, f"a staging container read the registry: {loot.text[:120]}"
    assert wrote.status_code == 404, f"a staging container began a registry upload: {wrote.text[:120]}"
