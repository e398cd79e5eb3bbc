"""`mainline demo`: the whole story on this machine, on real parts.

The local GitHub stand-in hosts `acme/webapp` over smart HTTP; the bot (web + worker, as
separate processes) hears its webhooks; the Docker engine, the registry and HAProxy run the
sample app. Story: set up v1 → merge v2 (good) → live; merge v3 (its /health fails) →
rolled back to v2 → v3 reverted on master by a revert pull request."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from bot.shutdown import (
    STOP_SIGNALS,
    alive,
    command_line,
    parent_of,
    process_env,
    stop_foreign_group,
    stop_process_groups,
)
from sandbox.demo_preview import preview_appears
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


class Demo:
    def __init__(self, ports: DemoPorts, state_dir: Path):
        self.ports = ports
        self.state = state_dir
        self.procs: list[subprocess.Popen] = []
        self.github = None
        self.slack = None
        self.stop_timeline = threading.Event()
        self.bot = f"http://127.0.0.1:{ports.bot}"
        self.owns_app = False
        # The read-only API token of this run: MAINLINE_DEMO_API_TOKEN when a script chose one.
        self.api_token = os.environ.get("MAINLINE_DEMO_API_TOKEN") or demo_token()

    # -- set-up ------------------------------------------------------------------------------

    def remove_app(self) -> None:
        """Stop the sample app's containers and its load balancer (this run's or an earlier one's)."""
        import docker

        from bot.adapters.haproxy import HAProxy

        HAProxy(self.state / "bot", SERVICE, "production", f"127.0.0.1:{self.ports.lb}").stop()
        try:
            client = docker.from_env()
            for container in client.containers.list(all=True, filters={"label": f"mainline.service={SERVICE}"}):
                container.remove(force=True)
        except docker.errors.DockerException:
            pass  # no engine yet: nothing of ours runs on it

    def env(self) -> dict:
        return dict(os.environ,
                    MAINLINE_DATABASE_URL=f"sqlite:///{self.state}/bot/mainline.db",
                    MAINLINE_QUEUE_URL=f"sqlite:///{self.state}/bot/queue.db",
                    MAINLINE_STATE_DIR=str(self.state / "bot"),
                    MAINLINE_PUBLIC_URL=self.bot,
                    MAINLINE_RECONCILE_SECONDS="5",
                    MAINLINE_LEASE_SECONDS="15",
                    MAINLINE_GITHUB_WRITE_INTERVAL="0",
                    GITHUB_WEBHOOK_SECRET=SECRET,
                    GITHUB_API_URL=f"http://127.0.0.1:{self.ports.github}",
                    GITHUB_TOKEN=TOKEN,
                    SLACK_API_URL=self.slack.url,
                    SLACK_BOT_TOKEN=SLACK_TOKEN,
                    SLACK_SIGNING_SECRET=SLACK_SIGNING,
                    MAINLINE_SLACK_CHANNEL="#deploys",
                    MAINLINE_SLACK_USERS="octocat=U0OCTOCAT,hubot=U0HUBOT",
                    GITHUB_OAUTH_CLIENT_ID=OAUTH_APP[0], GITHUB_OAUTH_CLIENT_SECRET=OAUTH_APP[1],
                    MAINLINE_ADMINS="github:octocat,slack:U0OCTOCAT",
                    PYTHONUNBUFFERED="1")

    def start(self) -> None:
        from sandbox.github import GitHubSandbox

        say("starting dockerd and the registry (scripts/services.sh up)")
        subprocess.run([str(ROOT / "scripts" / "services.sh"), "up"], check=True, stdout=subprocess.DEVNULL)
        self.stop_orphans()
        # Refuse before touching the app: another demo on these ports owns the containers too.
        self.require_free(("bot", self.ports.bot), ("GitHub", self.ports.github), ("Slack", self.ports.slack))
        self.owns_app = True
        self.remove_app()  # frees the load balancer's port when an earlier run of ours held it
        self.require_free(("load balancer", self.ports.lb))
        shutil.rmtree(self.state, ignore_errors=True)
        (self.state / "bot").mkdir(parents=True)
        self.github = GitHubSandbox(self.state / "github", webhook_url=f"{self.bot}/github/webhook",
                                    webhook_secret=SECRET, validate=True).start(port=self.ports.github)
        say(f"local GitHub on {self.github.url} (REST + git smart HTTP, checked against GitHub's OpenAPI)")
        self.github.oauth.register_app(*OAUTH_APP, callback_url=f"{self.bot}/login/callback")
        from sandbox.slack import SlackStandIn

        self.slack = SlackStandIn(token=SLACK_TOKEN, port=self.ports.slack).start()
        say(f"local Slack Web API on {self.slack.url} (deploy cards land in #deploys)")
        self.v1 = app_files("v1", "healthy", self.ports.lb)
        self.github.create_repo("acme", "webapp", dict(self.v1, **{"README.md": "# webapp\n"}),
                                collaborators={"octocat": "admin", "hubot": "write"})
        log = open(self.state / "bot.log", "ab")
        cli = [sys.executable, "-m", "bot.cli"]
        # Each in its own process group, so stopping one stops everything it started too.
        for args in (["serve", "--port", str(self.ports.bot), "--workers", "1"], ["worker"]):
            self.procs.append(subprocess.Popen(cli + args, env=self.env(), stdout=log, stderr=log, cwd=ROOT,
                                               start_new_session=True))
            self.write_pids()
        log.close()
        self.wait(lambda: self._get("/healthz") is not None, 30, "the bot did not start; see " + str(self.state / "bot.log"))
        make_read_token(self.env()["MAINLINE_DATABASE_URL"], self.api_token)
        say(f"bot on {self.bot} (dashboard /, API /api/services), worker running; log: {self.state / 'bot.log'}")
        say(f"sign in at {self.bot}/login as any user of the local GitHub (octocat, hubot); "
            f"read API token: {self.api_token}")
        threading.Thread(target=self.timeline, daemon=True).start()

    def require_free(self, *ports: tuple[str, int]) -> None:
        for name, port in ports:
            if not port_free(port):
                raise StoryFailed(f"port {port} ({name}) is taken by another process; stop it, or give the demo "
                                  f"other ports (`ss -ltnp 'sport = :{port}'` names the process)")

    def stop(self) -> None:
        """Stop the bot's processes (the worker hands its leases back), the stand-ins and the app."""
        self.stop_timeline.set()
        stop_process_groups(self.procs, grace=8)
        if self.github is not None:
            self.github.stop()
        if self.slack is not None:
            self.slack.stop()
        if self.owns_app:  # not when it refused to start because another demo runs
            self.remove_app()
            (self.state / PIDS).unlink(missing_ok=True)

    # -- what an earlier demo left ---------------------------------------------------------------

    def write_pids(self) -> None:
        (self.state / PIDS).write_text(json.dumps({"demo": os.getpid(), "children": [p.pid for p in self.procs]}))

    def stop_orphans(self) -> None:
        """Stop the web and worker processes of an earlier demo on this state dir that was killed
        before it could stop them; refuse while that demo still runs. Only processes provably its
        own are touched: listed in its pid file, running `bot.cli`, on this state dir."""
        try:
            record = json.loads((self.state / PIDS).read_text())
        except (OSError, ValueError):
            return
        ours = [pid for pid in record.get("children", []) if self.is_ours(pid)]
        owner = record.get("demo")
        if any(parent_of(pid) == owner for pid in ours):
            raise StoryFailed(f"another demo (pid {owner}) is running on {self.state}; stop it first")
        for pid in ours:
            args = command_line(pid)
            role = args[args.index("bot.cli") + 1] if "bot.cli" in args[:-1] else "(gone)"
            say(f"stopping `mainline {role}` (pid {pid}), left running by an earlier demo")
            stop_foreign_group(pid)

    def is_ours(self, pid: int) -> bool:
        return (isinstance(pid, int) and alive(pid) and "bot.cli" in command_line(pid)
                and process_env(pid).get("MAINLINE_STATE_DIR") == str(self.state / "bot"))

    # -- watching ------------------------------------------------------------------------------

    def _get(self, path: str):
        try:
            response = requests.get(self.bot + path, timeout=5, headers={"Authorization": f"Bearer {self.api_token}"})
        except requests.RequestException:
            return None
        return response.json() if response.ok else None

    def slack_lines(self, seen: dict) -> None:
        """Each Slack message as it is posted or edited in place."""
        for channel, messages in list(self.slack.messages.items()):
            for msg in list(messages):
                key = (channel, msg.ts)
                if seen.get(key) != (msg.updates, msg.text):
                    verb = "posted" if key not in seen else "updated"
                    seen[key] = (msg.updates, msg.text)
                    where = "thread" if msg.thread_ts else "card"
                    say(f"  slack {verb} {where}: {msg.text.splitlines()[0][:110] if msg.text else ''}")

    def timeline(self) -> None:
        seen: set[tuple] = set()
        slack_seen: dict = {}
        while not self.stop_timeline.wait(0.5):
            if self.slack is not None:
                self.slack_lines(slack_seen)
            for deploy in reversed(self._get(f"/api/deploys?service={SERVICE}&limit=10") or []):
                for i, event in enumerate(deploy["events"]):
                    key = (deploy["id"], i)
                    if key not in seen and event["kind"] != "step":
                        seen.add(key)
                        say(f"  [{SERVICE} {deploy['sha'][:7]}] {event['kind']}: {event['message']}")

    def wait(self, predicate, timeout: float, failure):
        """`failure` is the message, or a callable making it when the time is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.3)
        raise StoryFailed(failure() if callable(failure) else failure)

    def deploy_of(self, sha: str) -> dict | None:
        return next((d for d in self._get(f"/api/deploys?service={SERVICE}&limit=20") or [] if d["sha"] == sha), None)

    def settled(self, sha: str, states: tuple[str, ...], timeout: float = 180) -> dict:
        def done():
            d = self.deploy_of(sha)
            return d if d and d["state"] in states else None

        return self.wait(done, timeout, lambda: f"{sha[:7]} did not reach {' or '.join(states)}: {self.deploy_of(sha)}")

    def signs_in(self, login: str) -> bool:
        """A browser's way in: the dashboard sends it to GitHub's authorize page, which sends it back."""
        browser = requests.Session()
        authorize = browser.get(self.bot + "/", headers={"Accept": "text/html"}, timeout=5)
        if not authorize.url.startswith(f"{self.github.url}/login/oauth/authorize"):
            return False
        page = browser.get(authorize.url + f"&login={login}", headers={"Accept": "text/html"}, timeout=10)
        return page.ok and page.url == self.bot + "/" and SERVICE in page.text

    def serves(self) -> str:
        try:
            return requests.get(f"http://127.0.0.1:{self.ports.lb}/", timeout=5).text.strip()
        except requests.RequestException as exc:
            return f"(no answer: {exc})"

    def check(self, condition: bool, what: str) -> None:
        say(("  ✔ " if condition else "  ✘ ") + what)
        if not condition:
            raise StoryFailed(what)

    # -- the story -----------------------------------------------------------------------------

    def merge(self, version: str, mode: str, title: str, author: str) -> str:
        branch = f"{author}/{version}"
        self.github.create_branch(REPO, branch, self.github.head(REPO, "master"))
        self.github.push_commit(REPO, branch, app_files(version, mode, self.ports.lb), title, author_login=author)
        number = self.github.open_pull(REPO, branch, "master", title, body=f"Ships {version}.", user=author)
        preview_appears(self, REPO, TOKEN, number, self.github.head(REPO, branch))  # what merging would ship
        sha = self.github.merge_pull(REPO, number, merged_by="octocat")
        say(f"merged PR #{number} “{title}” by @{author} into master as {sha[:7]}")
        return sha

    def play(self) -> None:
        say("1. the first release: a push of v1 to master")
        v1 = self.github.push_commit(REPO, "master", {"CHANGELOG.md": "v1\n"}, "Start the changelog")
        self.settled(v1, ("live",))
        self.check(self.serves() == f"{SERVICE} v1", f"the load balancer on :{self.ports.lb} serves “{SERVICE} v1”")

        say("2. merge v2, a good release")
        v2 = self.merge("v2", "healthy", "Add the v2 page", "octocat")
        self.settled(v2, ("live",))
        self.check(self.serves() == f"{SERVICE} v2", f"v2 is live: “{self.serves()}”")

        say("3. merge v3, whose /health fails")
        v3 = self.merge("v3", "unhealthy", "Rework the health check", "hubot")
        bad = self.settled(v3, ("reverted", "failed"), timeout=240)
        self.check(bad["state"] == "reverted", f"v3 was rolled back and reverted ({bad['state']}: {bad['reason']})")
        self.check(self.serves() == f"{SERVICE} v2", f"production serves v2 again: “{self.serves()}”")
        pulls = requests.get(f"{self.github.url}/repos/{REPO}/pulls?state=all",
                             headers={"Authorization": f"token {TOKEN}"}, timeout=5).json()
        revert = next((p for p in pulls if p["title"] == 'Revert "Rework the health check"'), None)
        self.check(revert is not None and revert["merged_at"] is not None,
                   'the revert pull request “Revert "Rework the health check"” is merged')
        head = self.github.head(REPO, "master")
        self.wait(lambda: (self.deploy_of(head) or {}).get("state") == "live", 60, "the revert commit never went live")
        [status] = [s for s in self._get("/api/services") if s["environment"] == "production"]
        self.check(status["in_sync"] and status["head"] == head,
                   f"master ({head[:7]}) and production agree (in_sync: {status['in_sync']})")
        comments = requests.get(f"{self.github.url}/repos/{REPO}/issues/{pulls_number(pulls, 'Rework the health check')}"
                                "/comments", headers={"Authorization": f"token {TOKEN}"}, timeout=5).json()
        self.check(any("roll" in c["body"].lower() for c in comments), "the author of v3 was told on the PR")
        cards = self.slack.top_level("#deploys")
        self.check(any("revert" in (m.text or "").lower() for m in cards),
                   f"the deploy card in Slack #deploys says v3 was reverted ({len(cards)} cards)")
        self.check(not self.slack.violations, "every Slack call had a valid shape")
        self.check(self.signs_in("octocat"), "the dashboard signs octocat in through the local GitHub's OAuth flow")
        self.check(requests.get(f"{self.bot}/api/services", timeout=5).status_code == 401,
                   "the API refuses a request with no sign-in and no token")
        self.check(not self.github.violations, "every GitHub call and webhook matched GitHub's published contract"
                   + (f": {self.github.violations[:3]}" if self.github.violations else ""))
        # DORA's four keys as GET /api/dora serves them, checked against what was just played.
        from sandbox.demo_dora import show_four_keys

        show_four_keys(self, live={v1, v2, head}, bad={v3})


def demo_token() -> str:
    import secrets

    return "mlt_" + secrets.token_urlsafe(32)


def make_read_token(database_url: str, token: str) -> None:
    """Store the run's read-only token, as `mainline tokens create demo --scope read` would."""
    from bot.adapters.store import Store
    from bot.auth import ApiTokens

    ApiTokens(Store(database_url)).create("demo", "read", token=token)


def pulls_number(pulls: list[dict], title: str) -> int:
    return next(p["number"] for p in pulls if p["title"] == title)


def _interrupt(signum, _frame) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _set_handlers(handler) -> dict:
    """Install `handler` for the stop signals; the previous handlers (none off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def run_demo(once: bool = False, bot_port: int = 8000, ports: DemoPorts | None = None,
             state_dir: Path | None = None) -> int:
    ports = ports or DemoPorts(bot=bot_port)
    demo = Demo(ports, state_dir or Path.cwd() / ".mainline" / "demo")
    # SIGTERM and SIGHUP stop the demo as Ctrl-C does: through `finally`, which stops what it started.
    previous = _set_handlers(_interrupt)
    try:
        demo.start()
        demo.play()
        say("the story held: merge → live; bad merge → rolled back → reverted; master equals production")
        if once:
            return 0
        say(f"dashboard: {demo.bot}/ (sign in with the local GitHub)   app: http://127.0.0.1:{ports.lb}/   "
            f"GitHub: {demo.github.url}/repos/{REPO}")
        say(f"API: curl -H 'Authorization: Bearer {demo.api_token}' {demo.bot}/api/services")
        say("serving until interrupted (Ctrl-C)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0
    except StoryFailed as exc:
        say(f"demo failed: {exc}")
        return 1
    except KeyboardInterrupt as exc:
        say(f"stopped ({exc or 'SIGINT'}) before the story finished")
        return 130
    finally:
        # The stop is bounded (seconds); a second signal must not cut it short and leave children.
        _set_handlers(signal.SIG_IGN)
        try:
            demo.stop()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
