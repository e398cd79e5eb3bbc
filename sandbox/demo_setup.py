"""What `mainline demo` sets up around its story: its names and ports, the bot's environment, the
sample app's files, the read token, and the processes an earlier, killed demo left running."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from bot.auth import ApiTokens
from bot.infra.db.store import Store
from bot.infra.targets.docker.haproxy import HAProxy
from bot.shutdown import alive, command_line, parent_of, process_env, stop_foreign_group
from sandbox.sample_app import write_sample_app

SECRET = "demo-webhook-secret"
TOKEN = "demo-token"
SLACK_TOKEN = "xoxb-demo"
SLACK_SIGNING = "demo-slack-signing-secret"
REPO = "acme/webapp"
SERVICE = "webapp"
ROOT = Path(__file__).resolve().parents[1]
OAUTH_APP = ("Iv1.mainlinedemo", "demo-oauth-client-secret")  # registered on the local GitHub
# The demo's own pid and its children's, so a later demo can tell another demo still running
# (refuse) from the orphans of one that was killed (stop them).
PIDS = "demo.pids"


@dataclass(frozen=True)
class DemoPorts:
    bot: int = 8000
    lb: int = 8080
    github: int = 8100
    slack: int = 8110


class StoryFailed(Exception):
    """A step of the story did not hold."""


def say(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {line}", flush=True)


def app_files(version: str, mode: str, lb_port: int) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        write_sample_app(Path(tmp), f"{SERVICE} {version}", mode=mode, listen=f"127.0.0.1:{lb_port}")
        return {str(p.relative_to(tmp)): p.read_bytes() for p in Path(tmp).rglob("*") if p.is_file()}


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def require_free(*ports: tuple[str, int]) -> None:
    for name, port in ports:
        if not port_free(port):
            raise StoryFailed(f"port {port} ({name}) is taken by another process; stop it, or give the demo "
                              f"other ports (`ss -ltnp 'sport = :{port}'` names the process)")


def bot_env(state: Path, bot_url: str, ports: DemoPorts, slack_url: str) -> dict[str, str]:
    """The environment of the bot's web and worker processes: this machine's stand-ins and state."""
    return dict(os.environ,
                MAINLINE_DATABASE_URL=f"sqlite:///{state}/bot/mainline.db",
                MAINLINE_QUEUE_URL=f"sqlite:///{state}/bot/queue.db",
                MAINLINE_STATE_DIR=str(state / "bot"),
                MAINLINE_PUBLIC_URL=bot_url,
                MAINLINE_RECONCILE_SECONDS="5",
                MAINLINE_LEASE_SECONDS="15",
                MAINLINE_GITHUB_WRITE_INTERVAL="0",
                GITHUB_WEBHOOK_SECRET=SECRET,
                GITHUB_API_URL=f"http://127.0.0.1:{ports.github}",
                GITHUB_TOKEN=TOKEN,
                SLACK_API_URL=slack_url,
                SLACK_BOT_TOKEN=SLACK_TOKEN,
                SLACK_SIGNING_SECRET=SLACK_SIGNING,
                MAINLINE_SLACK_CHANNEL="#deploys",
                MAINLINE_SLACK_USERS="octocat=U0OCTOCAT,hubot=U0HUBOT",
                GITHUB_OAUTH_CLIENT_ID=OAUTH_APP[0], GITHUB_OAUTH_CLIENT_SECRET=OAUTH_APP[1],
                MAINLINE_ADMINS="github:octocat,slack:U0OCTOCAT",
                PYTHONUNBUFFERED="1")


def remove_app(state: Path, lb_port: int) -> None:
    """Stop the sample app's containers and its load balancer (this run's or an earlier one's)."""
    HAProxy(state / "bot", SERVICE, "production", f"127.0.0.1:{lb_port}").stop()
    try:
        client = docker.from_env()
        for container in client.containers.list(all=True, filters={"label": f"mainline.service={SERVICE}"}):
            container.remove(force=True)
    except docker.errors.DockerException:
        pass  # no engine yet: nothing of ours runs on it


def demo_token() -> str:
    return "mlt_" + secrets.token_urlsafe(32)


def make_read_token(database_url: str, token: str) -> None:
    """Store the run's read-only token, as `mainline tokens create demo --scope read` would."""
    ApiTokens(Store(database_url)).create("demo", "read", token=token)


# -- what an earlier demo left ---------------------------------------------------------------------


def write_pids(state: Path, procs: list[subprocess.Popen]) -> None:
    (state / PIDS).write_text(json.dumps({"demo": os.getpid(), "children": [p.pid for p in procs]}))


def stop_orphans(state: Path) -> None:
    """Stop the web and worker processes of an earlier demo on this state dir that was killed
    before it could stop them; refuse while that demo still runs. Only processes provably its
    own are touched: listed in its pid file, running `bot.cli`, on this state dir."""
    try:
        record = json.loads((state / PIDS).read_text())
    except (OSError, ValueError):
        return
    ours = [pid for pid in record.get("children", []) if is_ours(pid, state)]
    owner = record.get("demo")
    if any(parent_of(pid) == owner for pid in ours):
        raise StoryFailed(f"another demo (pid {owner}) is running on {state}; stop it first")
    for pid in ours:
        args = command_line(pid)
        role = args[args.index("bot.cli") + 1] if "bot.cli" in args[:-1] else "(gone)"
        say(f"stopping `mainline {role}` (pid {pid}), left running by an earlier demo")
        stop_foreign_group(pid)


def is_ours(pid: int, state: Path) -> bool:
    return (isinstance(pid, int) and alive(pid) and "bot.cli" in command_line(pid)
            and process_env(pid).get("MAINLINE_STATE_DIR") == str(state / "bot"))
