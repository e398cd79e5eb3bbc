"""HAProxy's runtime stats (`show stat` CSV rows), read per server: the fallback source of the
built-in canary metrics when no Prometheus answers."""

from __future__ import annotations

CODES = ("hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other")


def _int(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def counts_of(rows: list[dict[str, str]]) -> dict[str, tuple[int, int]]:
    """server -> (5xx responses, all responses), for the backend's servers."""
    return {row["svname"]: (_int(row.get("hrsp_5xx")), sum(_int(row.get(c)) for c in CODES))
            for row in rows if row.get("svname") not in (None, "", "BACKEND", "FRONTEND")}


def response_times(rows: list[dict[str, str]]) -> dict[str, float]:
    """server -> its average response time over its last 1024 responses, in seconds (`rtime`)."""
    return {row["svname"]: _int(row.get("rtime")) / 1000.0
            for row in rows if row.get("svname") not in (None, "", "BACKEND", "FRONTEND")}
