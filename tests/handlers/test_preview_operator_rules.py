"""A pull request's `mainline/preview` applies the operator's rules to the PR's deploy.yml, as
its `mainline/config` check does: a Docker host not in MAINLINE_DOCKER_HOSTS, or a Docker host's
TLS key read as a `file:` secret, makes the preview say "would be blocked … config", never
"✅ config: config valid … would ship" next to a failing config check."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.handlers.test_github_preview import preview_runs, process_inbox, with_v1_live

HOST = '    hosts: [{url: "tcp://127.0.0.1:2376", tls: engines/tls}]\n'


@pytest.mark.parametrize(("extra", "named"), [
    ('    hosts: ["ssh://deploy@10.0.0.99"]\n', "ssh://deploy@10.0.0.99 is not in MAINLINE_DOCKER_HOSTS"),
    (HOST + '    secrets: {KEY: "file:engines/tls/key.pem"}\n', "names a Docker host's TLS material"),
])
def test_the_preview_blocks_what_the_operator_refuses(world, extra, named):
    pipeline = world.wired.pipeline
    pipeline.opts = replace(pipeline.opts, docker_hosts=("tcp://127.0.0.1:2376",))
    with_v1_live(world)
    config = world.config_text()
    assert "    replicas: 1\n" in config
    hostile = config.replace("    replicas: 1\n", "    replicas: 1\n" + extra)
    number = world.open_pr("hubot/hosts", {".github/deploy.yml": hostile}, "Run on another box", author="hubot")
    head = world.head("hubot/hosts")
    world.relay()
    process_inbox(world)

    [run] = preview_runs(world, head)
    title, summary = run.output["title"], run.output["summary"]
    assert title.startswith(f"Merging #{number} now would be blocked in production: config"), title
    assert named in summary.replace("\\", "").replace("\u200d", "")  # markdown escapes, @-mention breaks
    assert "config valid" not in summary


def test_an_allowed_host_still_previews_as_shipping(world):
    pipeline = world.wired.pipeline
    pipeline.opts = replace(pipeline.opts, docker_hosts=("tcp://127.0.0.1:2376",))
    with_v1_live(world)
    config = world.config_text().replace("    replicas: 1\n", "    replicas: 1\n" + HOST)
    number = world.open_pr("hubot/hosts-ok", {".github/deploy.yml": config}, "Run on the tls box", author="hubot")
    head = world.head("hubot/hosts-ok")
    world.relay()
    process_inbox(world)

    [run] = preview_runs(world, head)
    assert run.output["title"].startswith(f"Merging #{number} now would ship"), run.output["title"]
