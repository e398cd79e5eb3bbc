"""Two processes reporting on one sha at once take turns (bot/infra/db/mutex.py): on PostgreSQL
through an advisory lock, on SQLite through a byte-range lock beside the database file. Without
it, each found no GitHub deployment and both created one (seen by bench/burst.py)."""

from __future__ import annotations

import subprocess
import sys
import threading

from bot.infra.db.store import Store


def test_a_named_lock_on_postgresql_makes_a_second_holder_wait(open_store, database_url):
    first, second = open_store(database_url), open_store(database_url)
    first.migrate()
    order: list[str] = []
    holding, entered = threading.Event(), threading.Event()
    release = threading.Event()

    def hold() -> None:
        with first.mutex("github-report acme/app@abc"):
            order.append("first in")
            holding.set()
            release.wait(30)
            order.append("first out")

    def wait_turn() -> None:
        holding.wait(30)
        with second.mutex("github-report acme/app@abc"):
            order.append("second in")
            entered.set()

    threads = [threading.Thread(target=hold), threading.Thread(target=wait_turn)]
    for t in threads:
        t.start()
    holding.wait(30)
    assert not entered.wait(1.0), "the second holder got in while the first held the lock"
    with second.mutex("github-report acme/app@other"):  # another sha is not held up
        pass
    release.set()
    for t in threads:
        t.join(30)
    assert order == ["first in", "first out", "second in"]


def test_a_named_lock_on_sqlite_is_held_across_processes(tmp_path):
    url = f"sqlite:///{tmp_path}/mainline.db"
    store = Store(url)
    store.migrate()
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys; from bot.infra.db.store import Store\n"
        f"s = Store({url!r})\n"
        "with s.mutex('github-report acme/app@abc'):\n"
        "    print('in', flush=True); sys.stdin.readline()\n")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "in"
        got = threading.Event()

        def take() -> None:
            with store.mutex("github-report acme/app@abc"):
                got.set()

        taker = threading.Thread(target=take)
        taker.start()
        assert not got.wait(1.0), "this process got the lock the other process holds"
        child.stdin.write("\n")
        child.stdin.flush()
        taker.join(30)
        assert got.is_set()
    finally:
        child.kill()
        child.communicate()
        store.engine.dispose()
