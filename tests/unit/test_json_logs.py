"""MAINLINE_LOG_FORMAT=json: one JSON object per line, each saying which service, environment,
sha and deploy it is about wherever there is one, and which webhook delivery it handles."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.errors import BuildError
from bot.logs import JsonFormatter, log_context, setup_logging
from tests.handlers.test_github_webhook import github_web_url, merged_pr, post, publish


@pytest.fixture
def settings(settings, tmp_path):
    return settings.model_copy(update={"github_web_url": github_web_url(tmp_path)})


@pytest.fixture
def json_lines():
    """What the root handler writes in JSON, as parsed objects (set up as `mainline` does)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    setup_logging(log_format="json")  # puts the context and secrets filters on every handler
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


class NoDocker:
    """A builder on a machine without an engine: the build step fails at once, and says so."""

    def image_exists(self, image):
        raise BuildError("no Docker engine here")


def test_deploy_lines_carry_service_environment_sha_and_deploy_id(client, wired, local_repo, settings, json_lines):
    publish(local_repo, settings)
    sha = local_repo.commit("Merge pull request #7 from octocat/feature")
    post(client, "pull_request", merged_pr(local_repo, sha), delivery="d-json")
    wired.process_delivery("d-json")
    wired.pipeline.w.builder = NoDocker()
    wired.pipeline.drive("web", "production")
    [deploy] = wired.pipeline.deploys("web")
    assert deploy["state"] == "failed"
    lines = json_lines()

    queued = next(line for line in lines if line["message"].endswith("queued for production by github:Codertocat"))
    assert {k: queued.get(k) for k in ("service", "environment", "sha", "deploy_id", "delivery_id")} == {
        "service": "web", "environment": "production", "sha": sha, "deploy_id": deploy["id"],
        "delivery_id": "d-json"}
    handled = next(line for line in lines if line["message"].startswith("delivery d-json"))
    assert handled["delivery_id"] == "d-json" and "deploy_id" not in handled
    failed = next(line for line in lines if "build failed: no Docker engine here" in line["message"])
    assert (failed["service"], failed["environment"], failed["sha"], failed["deploy_id"]) == (
        "web", "production", sha, deploy["id"])
    assert "delivery_id" not in failed


def test_lines_outside_any_deploy_carry_no_context(json_lines):
    logging.getLogger("mainline.test").info("nothing in particular")
    with log_context(service="web", sha="a" * 40), log_context(environment="staging"):
        logging.getLogger("mainline.test").warning("inside")
    outside, inside = json_lines()[-2:]
    assert not {"service", "environment", "sha", "deploy_id"} & set(outside)
    assert (inside["service"], inside["environment"], inside["sha"], inside["level"]) == ("web", "staging", "a" * 40,
                                                                                         "WARNING")
