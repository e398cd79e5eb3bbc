"""Together, the stories make every move of the state table, and no move outside it."""

from __future__ import annotations

from bot.domain import TRANSITIONS
from tests.engine import scenarios
from tests.engine.world import World


def test_the_stories_make_every_move_of_the_table_and_no_other(tmp_path, caplog):
    caplog.errors_expected = True
    seen: set[tuple[str, str]] = set()
    for i, story in enumerate(scenarios.ALL):
        world = World(tmp_path / str(i))
        story(world)
        seen |= world.store.moves
    table = {(src.value, dst.value) for src, moves in TRANSITIONS.items() for dst in moves}
    assert seen - table == set(), "moves outside the table"
    assert table - seen - {("queued", "queued")} == set(), "moves of the table no story makes"
