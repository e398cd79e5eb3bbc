"""`mainline demo`: the whole story on this machine, on real parts.

The local GitHub stand-in hosts `acme/webapp` over smart HTTP; the bot (web + worker, as
separate processes) hears its webhooks; the Docker engine, the registry and HAProxy run the
sample app. Story: set up v1 → merge v2 (good) → live; merge v3 (its /health fails) →
rolled back to v2 → v3 reverted on master by a revert pull request."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from bot.shutdown import STOP_SIGNALS, stop_process_groups
from sandbox.demo_dora import show_four_keys
from sandbox.demo_preview import preview_appears
from sandbox.demo_setup import (
    OAUTH_APP,
    PIDS,
    REPO,
    ROOT,
    SECRET,
    SERVICE,
    SLACK_TOKEN,
    TOKEN,
    DemoPorts,
    StoryFailed,
    app_files,
    bot_env,
    demo_token,
    make_read_token,
    remove_app,
    require_free,
    say,
    stop_orphans,
    write_pids,
)
from sandbox.github import GitHubSandbox
from sandbox.slack import SlackStandIn

__all__ = ["Demo", "DemoPorts", "StoryFailed", "run_demo"]


class Demo:
    MORAL = "the story held: merge → live; bad merge → rolled back → reverted; master equals production"

    def __init__(self, ports: DemoPorts, state_dir: Path):
        self.ports = ports
        self.state = state_dir
        self.procs: list[subprocess.Popen] = []
        self._github: GitHubSandbox | None = None
        self._slack: SlackStandIn | None = None
        self.stop_timeline = threading.Event()
        self.bot = f"http://127.0.0.1:{ports.bot}"
        self.owns_app = False
        # The read-only API token of this run: MAINLINE_DEMO_API_TOKEN when a script chose one.
        self.api_token = os.environ.get("MAINLINE_DEMO_API_TOKEN") or demo_token()

    @property
    def github(self) -> GitHubSandbox:
        if self._github is None:
            raise StoryFailed("the local GitHub is not started")
        return self._github

    @property
    def slack(self) -> SlackStandIn:
        if self._slack is None:
            raise StoryFailed("the local Slack is not started")
        return self._slack

    # -- set-up ------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return bot_env(self.state, self.bot, self.ports, self.slack.url)

    def start(self) -> None:
        say("starting dockerd and the registry (scripts/services.sh up)")
        subprocess.run([str(ROOT / "scripts" / "services.sh"), "up"], check=True, stdout=subprocess.DEVNULL)
        stop_orphans(self.state)
        # Refuse before touching the app: another demo on these ports owns the containers too.
        require_free(("bot", self.ports.bot), ("GitHub", self.ports.github), ("Slack", self.ports.slack))
        self.owns_app = True
        remove_app(self.state, self.ports.lb)  # frees the load balancer's port when an earlier run of ours held it
        require_free(("load balancer", self.ports.lb))
        shutil.rmtree(self.state, ignore_errors=True)
        (self.state / "bot").mkdir(parents=True)
        self._github = GitHubSandbox(self.state / "github", webhook_url=f"{self.bot}/github/webhook",
                                     webhook_secret=SECRET, validate=True).start(port=self.ports.github)
        say(f"local GitHub on {self.github.url} (REST + git smart HTTP, checked against GitHub's OpenAPI)")
        self.github.oauth.register_app(*OAUTH_APP, callback_url=f"{self.bot}/login/callback")
        self._slack = SlackStandIn(token=SLACK_TOKEN, port=self.ports.slack).start()
        say(f"local Slack Web API on {self.slack.url} (deploy cards land in #deploys)")
        self.v1 = app_files("v1", "healthy", self.ports.lb)
        self.github.create_repo("acme", "webapp", dict(self.v1, **{"README.md": "# webapp\n"}),
                                collaborators={"octocat": "admin", "hubot": "write"})
        self.start_bot()
        make_read_token(self.env()["MAINLINE_DATABASE_URL"], self.api_token)
        say(f"bot on {self.bot} (dashboard /, API /api/services), worker running; log: {self.state / 'bot.log'}")
        say(f"sign in at {self.bot}/login as any user of the local GitHub (octocat, hubot); "
            f"read API token: {self.api_token}")
        threading.Thread(target=self.timeline, daemon=True).start()

    def start_bot(self) -> None:
        """The bot's web server and worker, as `mainline serve` and `mainline worker` run them."""
        cli = [sys.executable, "-m", "bot.cli"]
        with open(self.state / "bot.log", "ab") as log:
            # Each in its own process group, so stopping one stops everything it started too.
            for args in (["serve", "--port", str(self.ports.bot), "--workers", "1"], ["worker"]):
                self.procs.append(subprocess.Popen(cli + args, env=self.env(), stdout=log, stderr=log, cwd=ROOT,
                                                   start_new_session=True))
                write_pids(self.state, self.procs)
        self.wait(lambda: self._get("/healthz") is not None, 30,
                  f"the bot did not start; see {self.state / 'bot.log'}")

    def stop(self) -> None:
        """Stop the bot's processes (the worker hands its leases back), the stand-ins and the app."""
        self.stop_timeline.set()
        started = time.monotonic()
        stop_process_groups(self.procs, grace=5)
        bot_stopped = time.monotonic()
        if self._github is not None:
            self._github.stop()
        if self._slack is not None:
            self._slack.stop()
        stand_ins_stopped = time.monotonic()
        if self.owns_app:  # not when it refused to start because another demo runs
            remove_app(self.state, self.ports.lb)
            (self.state / PIDS).unlink(missing_ok=True)
        done = time.monotonic()
        say(f"stopped in {done - started:.1f}s (bot {bot_stopped - started:.1f}s, stand-ins "
            f"{stand_ins_stopped - bot_stopped:.1f}s, app {done - stand_ins_stopped:.1f}s)")

    def revert_shipped(self, title: str, timeout: float) -> tuple[str, list[dict]]:
        """Check that the revert pull request of the PR titled `title` is merged and that master's
        head (the revert) went live; master's head, and the repository's pull requests."""
        pulls = requests.get(f"{self.github.url}/repos/{REPO}/pulls?state=all",
                             headers={"Authorization": f"token {TOKEN}"}, timeout=5).json()
        revert = next((p for p in pulls if p["title"] == f'Revert "{title}"'), None)
        self.check(revert is not None and revert["merged_at"] is not None,
                   f'the revert pull request “Revert "{title}"” is merged')
        head = self.github.head(REPO, "master")
        self.wait(lambda: (self.deploy_of(head) or {}).get("state") == "live", timeout,
                  "the revert commit never went live")
        return head, pulls

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
            if self._slack is not None:
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
        head, pulls = self.revert_shipped("Rework the health check", 60)
        [status] = [s for s in self._get("/api/services") if s["environment"] == "production"]
        self.check(status["in_sync"] and status["head"] == head,
                   f"master ({head[:7]}) and production agree (in_sync: {status['in_sync']})")
        v3_pull = pulls_number(pulls, "Rework the health check")
        comments = requests.get(f"{self.github.url}/repos/{REPO}/issues/{v3_pull}/comments",
                                headers={"Authorization": f"token {TOKEN}"}, timeout=5).json()
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
        show_four_keys(self, live={v1, v2, head}, bad={v3})


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
             state_dir: Path | None = None, demo_class: type[Demo] | None = None) -> int:
    """Play the default story, or `demo_class`'s (sandbox/demo_stories.py names them)."""
    ports = ports or DemoPorts(bot=bot_port)
    demo = (demo_class or Demo)(ports, state_dir or Path.cwd() / ".mainline" / "demo")
    # SIGTERM and SIGHUP stop the demo as Ctrl-C does: through `finally`, which stops what it started.
    previous = _set_handlers(_interrupt)
    try:
        demo.start()
        demo.play()
        say(demo.MORAL)
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
