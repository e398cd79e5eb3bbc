"""HAProxy's side of a canary, on the real haproxy binary: its own Prometheus exporter on a free
loopback port (chosen again when it was taken), and weights through the runtime API."""

from __future__ import annotations

import socket

import pytest
import requests

from bot.infra.targets.docker.haproxy import HAProxy, HAProxyError
from sandbox.canary_kit import free_port


def test_the_exporter_serves_per_server_series_and_weights_are_set_at_runtime(tmp_path):
    lb = HAProxy(tmp_path, "web", "production", f"127.0.0.1:{free_port()}")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    lb.dir.mkdir(parents=True)
    lb.metrics_port_path.write_text(f"{taken.getsockname()[1]}\n")  # chosen, then taken by someone else
    try:
        with pytest.raises(HAProxyError, match="did not start"):
            lb.ensure_running()
        assert lb.ensure_running()  # a fresh port this time
        address = lb.metrics_address()
        assert address is not None and address != f"127.0.0.1:{taken.getsockname()[1]}"
        lb.add("canary-1", "127.0.0.1:9")
        lb.set_weight("canary-1", 7)  # before it is enabled: it never takes more than its share
        lb.enable("canary-1")
        assert lb.weight("canary-1") == 7
        metrics = requests.get(f"http://{address}/metrics", timeout=5).text
        assert 'haproxy_server_http_responses_total{proxy="replicas",server="canary-1",code="5xx"} 0' in metrics
        assert 'haproxy_server_uweight{proxy="replicas",server="canary-1"} 7' in metrics
    finally:
        taken.close()
        lb.stop()
