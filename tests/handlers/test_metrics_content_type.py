"""GET /metrics answers with the exposition format's Content-Type once: a duplicated `charset`
parameter is a malformed media type, which strict scrapers (Prometheus 3) refuse."""

from __future__ import annotations

from email.message import Message

from prometheus_client import CONTENT_TYPE_LATEST


def test_metrics_content_type_names_its_charset_once(reader):
    resp = reader.get("/metrics")
    assert resp.status_code == 200
    content_type = resp.headers["Content-Type"]
    assert content_type == CONTENT_TYPE_LATEST
    parsed = Message()
    parsed["Content-Type"] = content_type
    assert parsed.get_content_type() == "text/plain"
    assert [key for key, _ in parsed.get_params()[1:]].count("charset") == 1
