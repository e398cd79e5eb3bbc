"""Steady GET traffic through a load balancer while a test drives a deploy (127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import threading
import time

import requests


@contextlib.contextmanager
def background_traffic(port: int, interval: float = 0.05):
    """GET / on 127.0.0.1:`port` until the block ends; answers (5xx included) feed HAProxy's counters."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(requests.RequestException):
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
            time.sleep(interval)

    thread = threading.Thread(target=loop, daemon=True, name="traffic")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
