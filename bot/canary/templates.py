"""A repository's PromQL templates: `{{service}}`, `{{environment}}`, `{{version}}`, `{{sha}}`.

The template is the repository's text, but the query runs against the operator's Prometheus,
so the values put into it must never change its meaning: each is checked against a strict
pattern (names of [a-z0-9_-], shas of hex digits) that holds nothing PromQL gives a meaning to
inside a string literal or a regex (no quote, no backslash, no brace, no `|`). Unknown or
malformed placeholders are refused when the config is validated, not when the query runs.
"""

from __future__ import annotations

import re

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]*)\s*\}\}")
KNOWN = ("service", "environment", "version", "sha")
MAX_TEMPLATE = 1000
_VALUE = {"service": re.compile(r"[a-z0-9][a-z0-9_-]{0,30}"), "environment": re.compile(r"[a-z0-9][a-z0-9_-]{0,30}"),
          "version": re.compile(r"[0-9a-f]{7,40}"), "sha": re.compile(r"[0-9a-f]{40}")}


class TemplateError(ValueError):
    """A template or a value that cannot be put into a query safely."""


def check_template(template: str) -> str:
    """Refuse what could not be rendered safely; the message names the problem."""
    if len(template) > MAX_TEMPLATE:
        raise TemplateError(f"the query is longer than {MAX_TEMPLATE} characters")
    if any(not c.isprintable() for c in template):
        raise TemplateError("the query holds a control character")
    for name in PLACEHOLDER.findall(template):
        if name not in KNOWN:
            raise TemplateError(f"unknown placeholder {{{{{name[:20]}}}}}: use {', '.join(KNOWN)}")
    rest = PLACEHOLDER.sub("", template)
    if "{{" in rest or "}}" in rest:
        raise TemplateError("a `{{` or `}}` that is not a placeholder: write {{service}}, {{environment}}, "
                            "{{version}} or {{sha}}")
    return template


def render(template: str, service: str, environment: str, sha: str) -> str:
    """The query with each placeholder replaced by its checked value."""
    check_template(template)
    values = {"service": service, "environment": environment, "version": sha[:12], "sha": sha}
    for key, value in values.items():
        if not _VALUE[key].fullmatch(value):
            raise TemplateError(f"{key} {value[:50]!r} cannot be put into a query")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], template)
