"""Check the stand-in against GitHub's published contracts: OpenAPI for REST, octokit for webhooks.

openapi-core comes with the `demo` extra, as this whole package does; production code never needs it."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import jsonschema
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator
from werkzeug.datastructures import Headers, ImmutableMultiDict

CONTRACTS = Path(__file__).parent / "contracts"
OPENAPI_FILE = CONTRACTS / "github-openapi-subset.json"
WEBHOOKS_FILE = CONTRACTS / "octokit-webhooks-schema.json"
# Paths in the spec are relative to this server; requests reach us on 127.0.0.1.
GITHUB_API = "https://api.github.com"


@functools.cache
def openapi_document() -> dict:
    return _allow_null_in_nullable_enums(json.loads(OPENAPI_FILE.read_text()))


def _allow_null_in_nullable_enums(node):
    """Read `nullable: true` with an `enum` as allowing null, as GitHub means it and answers.

    The strict OpenAPI 3.0.3 reading (null only if listed in the enum) would make an in-progress
    check run, whose `conclusion` api.github.com returns as null, a violation.
    """
    if isinstance(node, dict):
        if node.get("nullable") and "enum" in node and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        for value in node.values():
            _allow_null_in_nullable_enums(value)
    elif isinstance(node, list):
        for value in node:
            _allow_null_in_nullable_enums(value)
    return node


@functools.cache
def _openapi() -> OpenAPI:
    # The vendored spec is GitHub's own; validating the spec itself costs seconds and proves nothing.
    return OpenAPI.from_dict(openapi_document(), config=Config(spec_validator_cls=None))


@functools.cache
def _webhook_definitions() -> dict:
    return json.loads(WEBHOOKS_FILE.read_text())["definitions"]


@functools.cache
def _webhook_validator(definition: str) -> jsonschema.Draft7Validator:
    definitions = _webhook_definitions()
    if definition not in definitions:
        raise KeyError(f"no webhook schema named {definition!r}")
    return jsonschema.Draft7Validator({"$ref": f"#/definitions/{definition}",
                                       "definitions": definitions})


@functools.cache
def _component_validator(name: str) -> OAS30Validator:
    doc = openapi_document()
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": doc["components"]})


# openapi-core cannot match a path parameter that holds slashes (`git/ref/heads/main`,
# `contents/dir/file`), which GitHub's own paths do; validate those with the slashes escaped.
_SLASHY_PARAMETER = re.compile(r"^(/repos/[^/]+/[^/]+/(?:git/refs?|branches|contents))/(.+)$")


def _validation_path(path: str) -> str:
    match = _SLASHY_PARAMETER.match(path)
    if match is None:
        return path
    return f"{match[1]}/{match[2].replace('/', '%2F')}"


class ApiRequest:
    """The request shape openapi-core reads, with the host rewritten to api.github.com."""

    def __init__(self, method: str, path: str, body: bytes, content_type: str,
                 query: dict | ImmutableMultiDict, headers: dict | Headers):
        self.host_url = GITHUB_API
        self.path = _validation_path(path)
        self.method = method.lower()
        self.body = body
        self.content_type = content_type or "application/octet-stream"
        self.parameters = RequestParameters(query=ImmutableMultiDict(query), header=Headers(headers),
                                            cookie=ImmutableMultiDict())


class ApiResponse:
    def __init__(self, status_code: int, data: bytes, content_type: str, headers: dict | Headers):
        self.status_code = status_code
        self.data = data
        self.content_type = content_type
        self.headers = Headers(headers)


def request_errors(request: ApiRequest) -> list[str]:
    """Why this request breaks GitHub's OpenAPI, or []."""
    return _validate(_openapi().validate_request, request)


def response_errors(request: ApiRequest, response: ApiResponse) -> list[str]:
    """Why this response breaks GitHub's OpenAPI for that request, or []."""
    if response.status_code in (401, 403):
        # GitHub's description leaves 401 out of most operations, yet api.github.com answers it
        # to any unauthenticated call, and 403 to a token lacking a permission (check runs from a
        # personal token, an App not granted the permission); hold its body to GitHub's error shape.
        return schema_errors("basic-error", json.loads(response.data or b"null"))
    return _validate(_openapi().validate_response, request, response)


def schema_errors(component: str, instance: object) -> list[str]:
    """Why `instance` is not a valid OpenAPI component schema, or []."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _component_validator(component).iter_errors(instance)]


def webhook_errors(definition: str, payload: dict) -> list[str]:
    """Why `payload` is not valid under octokit's `definition` (e.g. `push$event`), or []."""
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in _webhook_validator(definition).iter_errors(payload)]


def _validate(check, *args) -> list[str]:
    try:
        check(*args)
    except Exception as error:  # openapi-core raises a family of errors; each is a finding
        return [_describe(error)]
    return []


def _describe(error: BaseException) -> str:
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    while cause is not None:
        inner = getattr(cause, "schema_errors", None)
        if inner:
            parts += [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in inner]
        else:
            parts.append(f"{type(cause).__name__}: {cause}")
        cause = cause.__cause__
    return "; ".join(parts)
