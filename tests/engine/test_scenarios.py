"""The engine against the fakes: every story of tests/engine/scenarios.py, each on its own."""

from __future__ import annotations

import pytest

from tests.engine import scenarios
from tests.engine.world import World


@pytest.mark.parametrize("story", scenarios.ALL, ids=lambda f: f.__name__)
def test_story(story, tmp_path, caplog):
    caplog.errors_expected = True  # giving up on a deploy is logged at ERROR, as it should be
    story(World(tmp_path))
