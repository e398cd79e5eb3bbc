"""Slack on the real thing: signed requests to the real Flask app (`create_app(settings,
wire(settings))`), the real pipeline on git, the Docker engine, the registry and HAProxy, and
Slack's Web API played by the local stand-in.

Each slash command acts on real state and answers through its response_url; each deploy has
one card in its service's channel, edited in place through a full deploy and through a
rollback, and its buttons work; a Slack outage never holds a deploy back."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import requests
from slack_testkit import sign

from bot.domain import DeployRequest
from bot.pipeline import wait_until
from sandbox.sample_app import write_sample_app
from tests.conftest import DROP_EMAIL, LocalRepo, git

pytestmark = pytest.mark.docker

DEPLOYER = "U0DEPLOYER"  # a deployer of every sample service
STRANGER = "U0STRANGER"  # in the workspace, in no `deployers`
OCTOCAT = "U0OCTOCAT"  # octocat's Slack id, from MAINLINE_SLACK_USERS (see conftest)
ACK_BUDGET = 1.0  # seconds; Slack's is 3, and nothing slow may happen before the ack
MIGRATION = "db/migrate/20260401000000_drop_email.rb"
FORWARD = ["queued", "gating", "building", "rolling_out", "verifying", "live"]
REVERT = ["rolling_back", "rolled_back", "reverting", "reverted"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SampleService:
    """The sample app's repository, each version a commit on master; Slack people in its config."""

    repo: LocalRepo
    name: str
    port: int

    @property
    def channel(self) -> str:
        return f"#{self.name}"

    def release(self, version: str, mode: str = "healthy", files: dict[str, str] | None = None) -> str:
        # Mainline may have pushed a revert since: build on what master is now.
        git("fetch", "--quiet", "origin", cwd=self.repo.work)
        if git("branch", "--remotes", "--list", "origin/master", cwd=self.repo.work):
            git("reset", "--quiet", "--hard", "origin/master", cwd=self.repo.work)
        write_sample_app(self.repo.work, f"{self.name} {version}", mode=mode, listen=f"127.0.0.1:{self.port}")
        self.repo.write(".github/deploy.yml", f"""\
service: {self.name}
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    replicas: 1
    listen: "127.0.0.1:{self.port}"
    deployers: ["slack:{DEPLOYER}", "github:octocat"]
health: {{path: /health, interval: 0.2s, failures: 2, bake: 1s, timeout: 15s, max_error_rate: 0.01}}
rollback: {{auto: true, revert: push}}
notify: {{slack_channel: "{self.channel}"}}
""")
        return self.repo.commit(f"Merge pull request from octocat/{version}\n\n{version}", files)

    def merge(self, pipeline, version: str, **kw) -> str:
        """A PR by octocat is merged: its deploy is requested as the push webhook would (not driven)."""
        sha = self.release(version, **kw)
        pipeline.request(DeployRequest(repo=f"acme/{self.name}", clone_url=self.repo.clone_url,
                                       ref="refs/heads/master", sha=sha, requested_by="github:octocat"))
        return sha

    def serves(self) -> str:
        return requests.get(f"http://127.0.0.1:{self.port}/", timeout=5).text.strip()


@pytest.fixture
def make_service(tmp_path, sample_services):
    def make(name: str) -> SampleService:
        service = f"s{name}{os.getpid() % 1000}{int(time.time() * 1000) % 100000}"
        root = tmp_path / service
        root.mkdir()
        port = free_port()
        sample_services.append((service, port))
        return SampleService(LocalRepo(root, service=service, port=port), service, port)

    return make


class Slack:
    """Slack's side of the conversation: signed slash commands and button presses to the real app,
    and what came back through each response_url."""

    def __init__(self, client, standin):
        self.client, self.standin = client, standin
        self.acks: list[tuple[str, float]] = []

    def _post(self, path: str, body: str, what: str):
        started = time.perf_counter()
        answer = self.client.post(path, data=body, headers=sign(body))
        self.acks.append((what, time.perf_counter() - started))
        return answer

    def command(self, command: str, text: str = "", user: str = DEPLOYER) -> Sent:
        url = self.standin.response_url()
        body = urlencode({"token": "legacy", "team_id": "T0MAINLINE", "channel_id": "C0OPS", "user_id": user,
                          "user_name": "someone", "command": command, "text": text, "response_url": url,
                          "trigger_id": "1.2.3"})
        answer = self._post("/slack/commands", body, f"{command} {text}".strip())
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return Sent(self.standin, url.rsplit("/", 1)[1], answer.get_json())

    def press(self, card, label: str, user: str = DEPLOYER) -> Sent:
        """Press a button of a card on the stand-in, the way Slack posts a block_actions payload."""
        [button] = [b for block in card.blocks if block["type"] == "actions" for b in block["elements"]
                    if b["text"]["text"] == label]
        url = self.standin.response_url()
        payload = {
            "type": "block_actions", "user": {"id": user, "username": "someone"},
            "channel": {"id": card.channel},
            "container": {"type": "message", "message_ts": card.ts, "channel_id": card.channel},
            "response_url": url, "trigger_id": "1.2.3",
            "actions": [{"type": "button", "action_id": button["action_id"], "block_id": "x",
                         "value": button["value"], "action_ts": str(time.time())}],
        }
        answer = self._post("/slack/actions", urlencode({"payload": json.dumps(payload)}), f"button {label}")
        assert answer.status_code == 200, answer.get_data(as_text=True)
        return Sent(self.standin, url.rsplit("/", 1)[1], None)

    def assert_acks_fast(self) -> None:
        slow = [(what, round(s, 3)) for what, s in self.acks if s > ACK_BUDGET]
        assert not slow, f"acknowledged after more than {ACK_BUDGET}s: {slow}"


@dataclass
class Sent:
    standin: object
    response_id: str
    ack: dict | None

    def reply(self, timeout: float = 15) -> dict:
        """The one answer that came back through the response_url, once it has."""
        assert wait_until(lambda: self.standin.responses.get(self.response_id), timeout, 0.02), \
            f"nothing came back through response_url {self.response_id}"
        [answer] = self.standin.responses[self.response_id]
        return answer

    @property
    def text(self) -> str:
        return self.reply()["text"]


@pytest.fixture
def slack(bot, standin):
    talk = Slack(bot, standin)
    yield talk
    talk.assert_acks_fast()


# -- reading the cards on the stand-in ---------------------------------------------------------------


def card_of(standin, channel: str, deploy_id: int):
    """The one top-level message in `channel` that is deploy #`deploy_id`'s card."""
    cards = [m for m in standin.top_level(channel)
             if any(b.get("block_id") == f"deploy-{deploy_id}" for b in m.blocks)]
    assert len(cards) == 1, f"deploy #{deploy_id} has {len(cards)} cards in {channel}"
    return cards[0]


def card_states(standin, card) -> list[str]:
    """The state the card showed at its post and after each chat.update, in order."""
    shown = []
    for call in standin.calls:
        if call.status != 200:
            continue
        posted = call.method == "chat.postMessage" and not call.params.get("thread_ts") and \
            any(b.get("block_id") == card.blocks[-1]["block_id"] for b in call.params.get("blocks") or [])
        updated = call.method == "chat.update" and call.params.get("ts") == card.ts
        if posted or updated:
            shown.append(call.params["text"].rsplit(": ", 1)[1].replace(" ", "_"))
    return shown


def distinct(states: list[str]) -> list[str]:
    """`states` without repeats in a row (a step may tell more than once in the same state)."""
    return [s for i, s in enumerate(states) if i == 0 or states[i - 1] != s]


def in_order(seen: list[str], order: list[str]) -> bool:
    """Every state in `seen` is in `order`, and they come in that order."""
    positions = [order.index(s) for s in seen if s in order]
    return len(positions) == len(seen) and positions == sorted(positions)


def thread_texts(standin, card) -> list[str]:
    return [m.text for m in standin.thread(card.channel, card.ts)]


def deploy_of(wired, service: SampleService, sha: str) -> dict:
    return next(d for d in wired.pipeline.deploys(service.name, limit=50) if d["sha"] == sha)


def assert_state(wired, service: SampleService, sha: str, state: str) -> None:
    deploy = deploy_of(wired, service, sha)
    assert deploy["state"] == state, f"{sha[:12]} is {deploy['state']}, not {state}: {deploy['reason']}"


def settle_slack(wired, timeout: float = 15) -> None:
    assert wired.slack.flush(timeout), "the Slack reporter did not catch up"


# -- the commands ------------------------------------------------------------------------------------


def test_each_slash_command_acts_on_the_real_pipeline(slack, slack_wired, standin, make_service):
    wired, pipeline = slack_wired, slack_wired.pipeline
    svc = make_service("cmd")
    v1 = svc.merge(pipeline, "v1")
    pipeline.drive(svc.name, "production")
    assert svc.serves() == f"{svc.name} v1"

    assert "/deploy <service> [ref] [to <env>]" in slack.command("/help").ack["text"]
    assert slack.command("/deploy").ack == {"response_type": "ephemeral",
                                            "text": "Usage: `/deploy <service> [ref] [to <env>]`"}
    assert "Usage: `/lock <service> [env] <reason>`" in slack.command("/lock", svc.name).ack["text"]
    status = slack.command("/status", svc.name)
    assert status.ack["text"].startswith(":hourglass_flowing_sand: On it")
    assert status.text == f"*{svc.name}* in production: live `{v1[:7]}` · in sync"

    assert slack.command("/deploy", "nosuch").text == ":grey_question: unknown service 'nosuch'"
    assert slack.command("/deploy", f"{svc.name} master to nowhere").text == \
        f"{svc.name} has no environment `nowhere` (known: production)."

    # /deploy answers before anything is built: the deploy is queued for the worker.
    v2 = svc.release("v2")
    sent = slack.command("/deploy", f"{svc.name} master to production")
    reply = sent.reply()
    assert reply["response_type"] == "in_channel"
    deploy = deploy_of(wired, svc, v2)
    assert reply["text"] == (f"<@{DEPLOYER}> asked to deploy {svc.name} `{v2[:7]}` in production: "
                             f"deploy #{deploy['id']} is queued.")
    assert deploy["state"] == "queued" and deploy["requested_by"] == f"slack:{DEPLOYER}"
    assert svc.serves() == f"{svc.name} v1"
    pipeline.drive(svc.name, "production")
    assert_state(wired, svc, v2, "live")
    assert svc.serves() == f"{svc.name} v2"

    history = slack.command("/history", svc.name).text
    assert history.startswith(f"Last deploys of *{svc.name}*:")
    assert f"`{v2[:7]}` live" in history and f"`{v1[:7]}` live" in history

    lock = slack.command("/lock", f"{svc.name} production incident 42").text
    assert lock == f":lock: <@{DEPLOYER}> locked {svc.name} in production: incident 42"
    assert pipeline.status(svc.name)[0]["locked"] == {"by": f"slack:{DEPLOYER}", "reason": "incident 42"}
    assert slack.command("/unlock", svc.name).text == f":unlock: <@{DEPLOYER}> unlocked {svc.name} in production."
    assert pipeline.status(svc.name)[0]["locked"] is None

    assert slack.command("/freeze", "quarter end").text == f":snowflake: <@{DEPLOYER}> froze deploys: quarter end"
    assert pipeline.status(svc.name)[0]["locked"] == {"by": f"slack:{DEPLOYER}", "reason": "quarter end"}
    assert slack.command("/unfreeze").text == f":sunny: <@{DEPLOYER}> lifted the deploy freeze."
    assert pipeline.status(svc.name)[0]["locked"] is None

    # A real rollback: production serves v1 again, and master no longer carries v2.
    rollback = slack.command("/rollback", svc.name).text
    assert rollback == (f"<@{DEPLOYER}> is rolling back {svc.name} `{v2[:7]}` in production: "
                        f"deploy #{deploy['id']} is rolling_back.")
    pipeline.drive(svc.name, "production")
    assert_state(wired, svc, v2, "reverted")
    assert svc.serves() == f"{svc.name} v1"
    [row] = pipeline.status(svc.name)
    assert row["in_sync"] is True and row["live"]["sha"] == deploy_of(wired, svc, v2)["revert_sha"]


def test_someone_not_among_the_deployers_is_refused_and_it_is_logged(slack, slack_wired, standin, make_service):
    pipeline = slack_wired.pipeline
    svc = make_service("auth")
    v1 = svc.merge(pipeline, "v1")
    pipeline.drive(svc.name, "production")
    before = {d["id"] for d in pipeline.deploys(svc.name)}

    for command, text in (("/deploy", svc.name), ("/lock", f"{svc.name} mine now"), ("/rollback", svc.name)):
        refusal = slack.command(command, text, user=STRANGER).reply()
        assert refusal == {"replace_original": False, "response_type": "ephemeral",
                           "text": f":no_entry: You are not a deployer of {svc.name} in production. "
                                   f"`.github/deploy.yml` lets <@{DEPLOYER}> do that."}
    refusal = slack.command("/freeze", "because", user=STRANGER).reply()
    assert refusal["response_type"] == "ephemeral" and refusal["text"].startswith(":no_entry: Only a Mainline admin")
    # Reading is for everyone.
    assert slack.command("/status", svc.name, user=STRANGER).text.startswith(f"*{svc.name}* in production: live")

    [row] = pipeline.status(svc.name)
    assert row["locked"] is None and row["live"]["sha"] == v1 and row["queue"] == []
    assert {d["id"] for d in pipeline.deploys(svc.name)} == before
    refused = [e for e in slack_wired.store.events_since() if e.kind == "refused"]
    assert [(e.service, e.by) for e in refused] == [(svc.name, f"slack:{STRANGER}")] * 3 + [("*", f"slack:{STRANGER}")]
    assert all("not a deployer" in e.message for e in refused[:3])


def test_a_slash_command_and_the_cli_go_through_the_same_pipeline_code(slack, slack_wired, make_service,
                                                                       mainline_cli):
    pipeline = slack_wired.pipeline
    svc = make_service("same")
    svc.merge(pipeline, "v1")  # recorded, not driven: nothing here needs Docker
    v2, v3 = svc.release("v2"), svc.release("v3")

    slack.command("/deploy", f"{svc.name} {v2}").reply()
    assert mainline_cli("deploy", svc.name, "--ref", v3, "--by", f"slack:{DEPLOYER}").startswith(f"queued {svc.name}")

    def row(sha: str) -> dict:
        d = deploy_of(slack_wired, svc, sha)
        events = [(e["kind"], e["message"].replace(sha[:12], "SHA"), e["by"]) for e in d["events"]]
        return {k: d[k] for k in ("environment", "state", "requested_by", "previous_sha", "pull_numbers")} | {
            "ref_is_sha": d["ref"] == sha, "events": events}

    assert row(v2) == row(v3) == {
        "environment": "production", "state": "queued", "requested_by": f"slack:{DEPLOYER}", "previous_sha": None,
        "pull_numbers": [], "ref_is_sha": True,
        "events": [("queued", f"slack:{DEPLOYER} asked for SHA in production", f"slack:{DEPLOYER}")]}

    slack.command("/lock", f"{svc.name} migration running").reply()
    cli_status = mainline_cli("status", svc.name)
    assert f"locked by slack:{DEPLOYER}: migration running" in cli_status
    mainline_cli("unlock", svc.name, "--by", f"slack:{DEPLOYER}")
    assert "locked" not in slack.command("/status", svc.name).text


# -- the deploy card -----------------------------------------------------------------------------------


def test_the_deploy_card_follows_a_deploy_and_its_buttons_work(slack, slack_wired, standin, make_service):
    wired, pipeline = slack_wired, slack_wired.pipeline
    svc = make_service("card")
    v1 = svc.merge(pipeline, "v1")
    pipeline.drive(svc.name, "production")
    settle_slack(wired)
    first = card_of(standin, svc.channel, deploy_of(wired, svc, v1)["id"])
    assert first.channel == standin.channel_id(svc.channel)
    shown = card_states(standin, first)
    assert shown[0] == "queued" and shown[-1] == "live" and in_order(shown, FORWARD), shown
    assert first.updates == len(shown) - 1 >= 1
    assert f"<@{OCTOCAT}>" in json.dumps(first.blocks), "the PR author is not mentioned on the card"
    thread = thread_texts(standin, first)
    assert any(t.startswith(":rocket: Started deploying") for t in thread), thread
    assert any(t.startswith(f":white_check_mark: {svc.name} `{v1[:7]}` in production is live") and
               f"cc <@{OCTOCAT}>" in t for t in thread), thread
    assert not any("blocked" in t for t in thread), "a gate that passed was reported as blocking"

    # A contract migration waits for a person: the card says why, and Approve lets it go.
    v2 = svc.merge(pipeline, "v2", files={MIGRATION: DROP_EMAIL})
    pipeline.drive(svc.name, "production")
    settle_slack(wired)
    held = deploy_of(wired, svc, v2)
    assert held["state"] == "queued" and held["blocked_by"].startswith("migrations: waiting for approval")
    card = card_of(standin, svc.channel, held["id"])
    assert ":no_entry: Blocked: waiting for approval of contract migration" in json.dumps(card.blocks)
    assert slack.press(card, "Approve", user=STRANGER).text.startswith(":no_entry: You are not a deployer")
    assert slack.press(card, "Approve").text == f"You approved deploy #{held['id']} of {svc.name} in production."
    pipeline.drive(svc.name, "production")
    settle_slack(wired)
    assert_state(wired, svc, v2, "live")
    assert svc.serves() == f"{svc.name} v2"
    card = card_of(standin, svc.channel, held["id"])
    assert card_states(standin, card)[-1] == "live"
    assert "Blocked" not in json.dumps(card.blocks)

    # Roll back from the live card: production serves v1 again; the same card tells the story.
    answer = slack.press(card, "Roll back").text
    assert answer.startswith(f"Rolling back {svc.name} in production: deploy #{held['id']}")
    pipeline.drive(svc.name, "production")
    settle_slack(wired)
    assert_state(wired, svc, v2, "reverted")
    assert svc.serves() == f"{svc.name} v1"
    card = card_of(standin, svc.channel, held["id"])
    shown = card_states(standin, card)
    # Updates coalesce to the latest state when they queue up, so a step may be skipped; the card
    # never goes backwards and ends on the outcome.
    assert shown[-1] == "reverted" and in_order(distinct(shown[shown.index("live"):]), ["live", *REVERT]), shown
    assert [b["text"]["text"] for b in card.blocks[-1]["elements"]] == ["Lock"]

    assert slack.press(card, "Lock").text == f":lock: You locked {svc.name} in production."
    assert pipeline.status(svc.name)[0]["locked"]["by"] == f"slack:{DEPLOYER}"

    # Reject: a held deploy is refused by a person, and fails saying so.
    pipeline.unlock(svc.name, "production", "test")
    v4 = svc.merge(pipeline, "v4", files={MIGRATION: DROP_EMAIL})
    pipeline.drive(svc.name, "production")
    settle_slack(wired)
    rejected = deploy_of(wired, svc, v4)
    card = card_of(standin, svc.channel, rejected["id"])
    assert slack.press(card, "Reject").text == f"You rejected deploy #{rejected['id']} of {svc.name} in production."
    pipeline.drive(svc.name, "production")
    settle_slack(wired)
    assert_state(wired, svc, v4, "failed")
    assert card_states(standin, card_of(standin, svc.channel, rejected["id"]))[-1] == "failed"
    assert svc.serves() == f"{svc.name} v1"


def test_a_bad_release_card_goes_through_rollback_and_revert(slack_wired, standin, make_service):
    wired, pipeline = slack_wired, slack_wired.pipeline
    svc = make_service("bad")
    svc.merge(pipeline, "v1")
    pipeline.drive(svc.name, "production")
    v2 = svc.merge(pipeline, "v2", mode="unhealthy")
    pipeline.drive(svc.name, "production")
    settle_slack(wired)

    bad = deploy_of(wired, svc, v2)
    assert bad["state"] == "reverted"
    assert svc.serves() == f"{svc.name} v1"
    card = card_of(standin, svc.channel, bad["id"])
    shown = card_states(standin, card)
    assert shown[0] == "queued" and shown[-1] == "reverted", shown
    assert in_order(distinct(shown), FORWARD[:-1] + REVERT), shown
    thread = thread_texts(standin, card)
    broadcast = [c.params["text"] for c in standin.calls
                 if c.method == "chat.postMessage" and c.params.get("reply_broadcast")]
    for state in ("rolled back", "reverted"):
        [line] = [t for t in thread if f"in production {state}:" in t]
        assert f"cc <@{OCTOCAT}>" in line and line in broadcast
    # The revert of v2 is deployed in its turn, with its own card.
    revert = deploy_of(wired, svc, bad["revert_sha"])
    assert revert["state"] == "live"
    assert card_states(standin, card_of(standin, svc.channel, revert["id"]))[-1] == "live"


# -- Slack down ----------------------------------------------------------------------------------------


def test_slack_down_never_holds_a_deploy_back_and_the_card_catches_up(slack_wired, standin, make_service):
    wired, pipeline = slack_wired, slack_wired.pipeline
    svc = make_service("down")
    svc.merge(pipeline, "v1")
    started = time.monotonic()
    pipeline.drive(svc.name, "production")
    with_slack = time.monotonic() - started
    settle_slack(wired)

    # Slack answers 503 to everything while v2 is deployed.
    standin.fail_next(10_000, status=503)
    started = time.monotonic()
    v2 = svc.merge(pipeline, "v2")
    pipeline.drive(svc.name, "production")
    without_slack = time.monotonic() - started
    assert_state(wired, svc, v2, "live")
    assert svc.serves() == f"{svc.name} v2"
    # Waiting on Slack's retries would add minutes: loose bounds, for a busy machine.
    assert without_slack < with_slack * 2 + 10, f"{without_slack:.1f}s with Slack down, {with_slack:.1f}s with it up"
    deploy_id = deploy_of(wired, svc, v2)["id"]
    assert not [m for m in standin.top_level(svc.channel) if m.blocks[-1]["block_id"] == f"deploy-{deploy_id}"]

    standin.fail_next(0)
    settle_slack(wired, timeout=45)
    card = card_of(standin, svc.channel, deploy_id)
    assert card_states(standin, card)[-1] == "live"
    assert any("is live" in t for t in thread_texts(standin, card))

    # Rate limited (429 with Retry-After) through v3: the same, and Retry-After is what it waits.
    standin.fail_next(4, status=429, retry_after=1)
    v3 = svc.merge(pipeline, "v3")
    pipeline.drive(svc.name, "production")
    assert_state(wired, svc, v3, "live")
    settle_slack(wired, timeout=30)
    card = card_of(standin, svc.channel, deploy_of(wired, svc, v3)["id"])
    assert card_states(standin, card)[-1] == "live"
    assert sum(1 for c in standin.calls if c.status == 429) == 4


def test_the_real_app_refuses_a_forged_or_stale_slack_request(bot, standin):
    body = urlencode({"command": "/freeze", "text": "forged", "user_id": DEPLOYER, "channel_id": "C0OPS",
                      "response_url": standin.response_url()})
    forged = bot.post("/slack/commands", data=body, headers=sign(body, secret="not-the-secret"))
    stale = bot.post("/slack/actions", data=body, headers=sign(body, timestamp=int(time.time()) - 6 * 60))
    assert (forged.status_code, forged.get_json()) == (401, {"error": "bad Slack signature"})
    assert (stale.status_code, stale.get_json()) == (
        401, {"error": "request timestamp is more than 5 minutes from now"})
    assert standin.responses == {}
