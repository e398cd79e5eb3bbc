"""Stopping what we started, within seconds: on a signal, child processes and busy threads.

`mainline serve`, `worker` and `demo` each stop everything they started on SIGINT or SIGTERM
(and SIGHUP: the terminal went away). A process that stops quietly but leaves a child behind
leaves its port taken and its state shared with whatever starts next."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("mainline.shutdown")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def on_stop_signals() -> threading.Event:
    """Return an event set by the first SIGINT, SIGTERM or SIGHUP (main thread only).

    Later signals are ignored: the stop that is under way is bounded, and cutting it short is
    what leaves leases held and children running."""
    stopping = threading.Event()

    def handle(signum, _frame) -> None:
        if not stopping.is_set():
            log.info("received %s; stopping", signal.Signals(signum).name)
        stopping.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, handle)
    return stopping


def interrupt_thread(thread: threading.Thread) -> bool:
    """Raise KeyboardInterrupt in `thread` at its next Python instruction.

    A deploy step runs in a queue thread; its `finally` (which hands the lease back) runs only if
    the step ends. A thread blocked in a system call sees the interrupt once the call returns, so
    callers also stop the child processes such calls wait on."""
    if thread.ident is None or not thread.is_alive():
        return False
    done = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(KeyboardInterrupt))
    return done == 1


def join_all(threads: Iterable[threading.Thread], timeout: float) -> list[threading.Thread]:
    """Wait for the threads until `timeout` in all; return those still alive."""
    deadline = time.monotonic() + timeout
    alive = [t for t in threads if t.is_alive()]
    for thread in alive:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in alive if t.is_alive()]


# -- processes -------------------------------------------------------------------------------------


def parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ')'.
    return int(stat.rsplit(")", 1)[1].split()[1])


def descendants(pid: int | None = None) -> list[int]:
    """Every process below `pid` (default: this one), children first."""
    root = os.getpid() if pid is None else pid
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            parent = parent_of(int(entry.name))
            if parent is not None:
                parents[int(entry.name)] = parent
    found, frontier = [], [root]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie has exited; only its parent's wait is missing.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _signal(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def stop_children(grace: float = 2.0) -> None:
    """SIGTERM every process this one started (git, a build), SIGKILL what is left after `grace`.

    Daemons that detached (HAProxy runs with -D and its own session) are not below us and stay:
    the load balancer keeps serving production while the bot is down."""
    pids = descendants()
    if not pids:
        return
    _signal(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    _signal([p for p in pids if alive(p)], signal.SIGKILL)


def stop_process_groups(procs: Iterable[subprocess.Popen], grace: float = 8.0) -> None:
    """Stop children started with `start_new_session=True`, and everything in their groups.

    Each leader gets SIGTERM and `grace` seconds to stop its own; then the whole group gets
    SIGKILL, which also takes any grandchild the leader left behind. Leaders are reaped only
    after that, so a group id cannot have been reused by then."""
    procs = [p for p in procs if p.returncode is None]
    for proc in procs:
        _signal([proc.pid], signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not all(_exited(p.pid) for p in procs):
        time.sleep(0.05)
    for proc in procs:
        if not _exited(proc.pid):
            log.warning("pid %s did not stop within %.0fs of SIGTERM; killing it", proc.pid, grace)
        kill_group(proc.pid)
        proc.wait()


def _exited(pid: int) -> bool:
    """Whether our child `pid` has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None
    except ChildProcessError:
        return True


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


# -- the worker ------------------------------------------------------------------------------------


def stop_worker(consumer, helpers: list[threading.Thread], release_leases, grace: float = 2.0,
                after_interrupt: float = 3.0) -> None:
    """Stop a huey consumer (thread workers) and the worker's helper threads, handing leases back.

    Queue threads finish the task in hand if it ends within `grace`. A deploy step can run for
    minutes (a bake, a build), so a thread still busy then is interrupted: the step ends, and
    the drive's `finally` hands its lease back. Children it waits on are stopped, so a thread
    blocked on one resumes and sees the interrupt. Whatever is still stuck after that (a blocking
    socket read) has its leases released directly by `release_leases()`, as the process exits."""
    consumer.stop_flag.set()
    threads = [t for _, t in consumer.worker_threads] + [consumer.scheduler] + list(helpers)
    busy = join_all(threads, grace)
    if busy:
        log.info("interrupting %s, still busy %.0fs after the stop", ", ".join(t.name for t in busy), grace)
        for thread in busy:
            interrupt_thread(thread)
        stop_children()
        busy = join_all(busy, after_interrupt)
    if busy:
        released = release_leases()
        log.warning("%s did not stop; handed back %d lease(s) directly", ", ".join(t.name for t in busy), released)
    log.info("worker stopped")


def stop_foreign_group(pgid: int, grace: float = 5.0) -> None:
    """Stop a process group we did not start (an earlier run's orphans): SIGTERM, then SIGKILL."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pgid):
        time.sleep(0.1)
    kill_group(pgid)


def process_env(pid: int) -> dict[str, str]:
    """A process's environment (readable for our own user's processes), {} when gone."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def command_line(pid: int) -> list[str]:
    try:
        return [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return []
