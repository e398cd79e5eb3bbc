"""One in-memory fake per port of bot/ports.py: the engine runs against them with no Docker,
no git and no database (tests/engine)."""

from tests.fakes.chat import FakeChat
from tests.fakes.git import FakeGit
from tests.fakes.github import FakeGitHost, FakePulls, Pull
from tests.fakes.runtime import FakeBuilder, FakeTarget
from tests.fakes.store import FakeStore
from tests.fakes.trial import FakeClock, FakeTrial

__all__ = ["FakeBuilder", "FakeChat", "FakeClock", "FakeGit", "FakeGitHost", "FakePulls", "FakeStore", "FakeTarget",
           "FakeTrial", "Pull"]
