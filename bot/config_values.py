"""The value types of deploy.yml: each checked strictly, with a message a person can act on,
and published in the JSON Schema with the same rule (bot/config.py builds the model from these).

Why each rule: names become file paths (the HAProxy state dir) and container names; `listen`
is written into haproxy.cfg; `health.path` is joined to the load balancer's URL; check limits
reach Docker, where 0 means unlimited. Every string is bounded and free of control characters.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

NAME_RE = r"^[a-z0-9][a-z0-9_-]{0,30}$"
_NAME = re.compile(NAME_RE)
LISTEN_RE = r"^(\[[0-9A-Fa-f:.]{2,45}\]|[0-9]{1,3}(\.[0-9]{1,3}){3}):[0-9]{1,5}$"
_LISTEN = re.compile(r"(\[[0-9A-Fa-f:.]{2,45}\]|[0-9.]{7,15}):([0-9]{1,5})")
# RFC 3986 path and query characters, less `@` and `#`; never `//` first (a host), never `\`.
_PATH_CHARS = r"A-Za-z0-9._~!$&'()*+,;=:%?-"
HEALTH_PATH_RE = rf"^/([{_PATH_CHARS}][/{_PATH_CHARS}]{{0,254}})?$"
_HEALTH_PATH = re.compile(HEALTH_PATH_RE[:-1])
REF_RE = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$"
_REF = re.compile(REF_RE[:-1])
GLOB_RE = r"^[A-Za-z0-9._/*?!^\[\]-]{1,100}$"
_GLOB = re.compile(GLOB_RE[:-1])
CHECK_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,39}$"
_CHECK_NAME = re.compile(CHECK_NAME_RE[:-1])
MEMORY_RE = r"^[0-9]{1,12}[bkmgBKMG]$"
_MEMORY = re.compile(MEMORY_RE[:-1])
_MEMORY_UNITS = {"b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
MEMORY_MIN, MEMORY_MAX = 16 * 1024 ** 2, 64 * 1024 ** 3
CPUS_MIN, CPUS_MAX = 0.1, 16.0
_NO_CONTROL_RE = r"^[^\x00-\x1f\x7f]*$"
_NO_SPACE_RE = r"^[^\x00-\x20\x7f]*$"
_DURATION = re.compile(r"(\d{1,9}(?:\.\d{1,9})?)\s?(ms|s|m|h)?")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def printable(text: str, limit: int = 60) -> str:
    """`text` with control characters escaped and cut to `limit`: safe in a one-line message."""
    out = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    return out + ("…" if len(text) > limit else "")


def _show(value: Any) -> str:
    # `printable` has escaped control characters already: quote, never repr() them a second time.
    return f"'{printable(value)}'" if isinstance(value, str) else printable(repr(value))


def check_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("names are 1 to 31 characters of a-z, 0-9, '_' and '-', starting with a letter "
                         f"or digit; got {_show(value)}")
    return value


def check_listen(value: str) -> str:
    """`127.0.0.1:8080` or `[::1]:8080`: an IP literal and a port, nothing else."""
    match = _LISTEN.fullmatch(value)
    ok = match is not None and 0 < int(match[2]) < 65536
    if ok and match:
        host = match[1]
        try:
            ipaddress.IPv6Address(host[1:-1]) if host.startswith("[") else ipaddress.IPv4Address(host)
        except ValueError:
            ok = False
    if not ok:
        raise ValueError("listen must be an IP address and a port 1-65535, like 127.0.0.1:8080 or [::1]:8080, "
                         f"with nothing else; got {_show(value)}")
    return value


def _matching(pattern: re.Pattern[str], rule: str) -> Callable[[str], str]:
    """A validator: the value whole matches `pattern`, or a ValueError saying `rule` and the value."""

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{rule}; got {_show(value)}")
        return value

    return check


check_health_path = _matching(_HEALTH_PATH, "health.path must start with a single '/' and hold only URL path "
                              "characters (no '@', '\\', '#', spaces or control characters), at most 256")
check_glob = _matching(_GLOB, "branch globs are 1 to 100 characters of letters, digits, '._/-' and the glob "
                       "characters '*?[]!^'")
check_check_name = _matching(_CHECK_NAME, "check names are 1 to 40 letters, digits, spaces and '_.:-'")


def check_ref(value: str) -> str:
    bad = not _REF.fullmatch(value) or ".." in value or "//" in value or value.endswith(("/", ".", ".lock"))
    if bad:
        raise ValueError(f"not a branch name git accepts (letters, digits, '.', '_', '/', '-'): {_show(value)}")
    return value


def parse_memory(value: str) -> int:
    """Bytes from `512m`, `2g`, `65536k`: a unit is required, and 16m-64g (0 would be unlimited)."""
    if not isinstance(value, str) or not _MEMORY.fullmatch(value):
        hint = " (Kubernetes units such as Mi and Gi are not accepted)" if isinstance(value, str) and \
            value.endswith(("i", "I")) else ""
        raise ValueError(f"memory must be a whole number and one unit of b, k, m or g, like 512m or 2g; "
                         f"got {_show(value)}{hint}")
    size = int(value[:-1]) * _MEMORY_UNITS[value[-1].lower()]
    if not MEMORY_MIN <= size <= MEMORY_MAX:
        raise ValueError(f"memory must be between 16m and 64g; got {_show(value)}")
    return size


def _memory(value: Any) -> Any:
    parse_memory(value)  # before pydantic's type check: `memory: 0` deserves this message too
    return value


def _no_control(value: str) -> str:
    if any(not c.isprintable() for c in value):
        raise ValueError(f"control characters are not allowed: {_show(value)}")
    return value


def _no_space(value: str) -> str:
    if any(not c.isprintable() or c.isspace() for c in value):
        raise ValueError(f"spaces and control characters are not allowed: {_show(value)}")
    return value


def parse_duration(value: Any) -> float:
    """Seconds from `30s`, `10m`, `1.5h`, `250ms` or a bare number of seconds (finite, >= 0)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value) if abs(value) < 1e12 else math.inf
    else:
        match = _DURATION.fullmatch(str(value).strip()[:40]) if isinstance(value, str) else None
        if not match:
            raise ValueError(f"not a duration: {_show(value)} (use e.g. 30s, 10m, 1h)")
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"not a duration: {_show(value)} (use e.g. 30s, 10m, 1h)")
    return seconds


@dataclass(frozen=True)
class DurationRange:
    low: float
    high: float


def _say(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"


def check_duration(value: Any, bounds: DurationRange) -> Any:
    seconds = parse_duration(value)
    if not bounds.low <= seconds <= bounds.high:
        raise ValueError(f"must be between {_say(bounds.low)} and {_say(bounds.high)}; got {_show(value)}")
    return value


def string_schema(pattern: str, max_length: int | None = None) -> WithJsonSchema:
    schema: dict[str, Any] = {"type": "string", "pattern": pattern}
    if max_length is not None:
        schema["maxLength"] = max_length
    return WithJsonSchema(schema)


NAME = Annotated[str, AfterValidator(check_name), string_schema(NAME_RE)]
LISTEN = Annotated[str, AfterValidator(check_listen), string_schema(LISTEN_RE)]
HEALTH_PATH = Annotated[str, AfterValidator(check_health_path), string_schema(HEALTH_PATH_RE)]
REF = Annotated[str, AfterValidator(check_ref), string_schema(REF_RE)]
GLOB = Annotated[str, AfterValidator(check_glob), string_schema(GLOB_RE)]
CHECK_NAME = Annotated[str, AfterValidator(check_check_name), string_schema(CHECK_NAME_RE)]
MEMORY = Annotated[str, BeforeValidator(_memory), string_schema(MEMORY_RE)]


def _bounded(limit: int, spaces: bool = True) -> Any:
    check = _no_control if spaces else _no_space

    def bounded(value: str) -> str:
        if len(value) > limit:
            raise ValueError(f"at most {limit} characters; got {len(value)}")
        return check(value)

    return Annotated[str, AfterValidator(bounded), string_schema(_NO_CONTROL_RE if spaces else _NO_SPACE_RE, limit)]


TEXT = _bounded(255)
SHORT = _bounded(64)
ZONE = _bounded(64, spaces=False)
DEPLOYER = _bounded(100, spaces=False)
EMAIL = _bounded(254, spaces=False)
URL = _bounded(2048, spaces=False)
PATH_GLOB = _bounded(200)
