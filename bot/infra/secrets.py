"""Secret references resolved on the bot's side at deploy time: `aws-secretsmanager:NAME`,
`aws-ssm:/PATH` (SecureString decrypted) and `file:NAME` under MAINLINE_SECRETS_DIR.

A value is held in memory only while a deploy or a repair needs it: it goes to a container's
environment and nowhere else. Errors name the reference, never a value; a `Masker` replaces
every value in text the bot keeps (events, release command output).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from bot.errors import SecretError, TransientError

MAX_VALUE = 32 * 1024
MASK = "***"
# Shorter values would mask ordinary words of the output; they are refused at resolution instead.
MIN_MASKED = 4


__all__ = ["Masker", "SecretError", "SecretResolver", "digest", "safe_file"]


def safe_file(secrets_dir: Path | None, name: str) -> Path:
    """`name` under the secrets dir, refusing anything that leaves it (`..`, absolute, symlinks out)."""
    if secrets_dir is None:
        raise SecretError(f"file:{name} needs MAINLINE_SECRETS_DIR, which is not set")
    root = Path(secrets_dir).resolve()
    if name.startswith("/") or ".." in Path(name).parts or "\x00" in name:
        raise SecretError(f"file:{name} is not a file under MAINLINE_SECRETS_DIR")
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path == root:
        raise SecretError(f"file:{name} is not a file under MAINLINE_SECRETS_DIR")
    return path


DOCKER_TLS_FILES = ("ca.pem", "cert.pem", "key.pem")  # Docker's client layout, for hosts: tls:


class Masker:
    """Replaces every secret value in a text with ***."""

    def __init__(self, values: Iterable[str] = ()):
        self.values = sorted({v for v in values if len(v) >= MIN_MASKED}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.values:
            text = text.replace(value, MASK)
        return text

    def data(self, data: dict[str, Any]) -> dict[str, Any]:
        return {k: self(v) if isinstance(v, str) else v for k, v in data.items()}


class SecretResolver:
    def __init__(self, secrets_dir: Path | None, session_factory: Callable[[], Any] | None = None):
        self.secrets_dir = secrets_dir
        self._session_factory = session_factory

    def _client(self, service: str) -> Any:
        if self._session_factory is not None:
            return self._session_factory().client(service)
        import boto3  # only a process that resolves AWS secrets loads boto3

        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        return boto3.session.Session(region_name=region).client(service)

    def resolve(self, refs: Iterable[tuple[str, str]]) -> dict[str, str]:
        """NAME -> value for every (NAME, reference); SecretError on the first that fails."""
        values = {}
        for name, ref in refs:
            value = self._one(ref)
            if len(value) > MAX_VALUE or "\x00" in value:
                raise SecretError(f"{name}: {ref} holds a value over {MAX_VALUE // 1024} KB or a NUL character")
            if len(value) < MIN_MASKED:
                raise SecretError(f"{name}: {ref} holds a value shorter than {MIN_MASKED} characters, "
                                  "too short to be masked in output")
            values[name] = value
        return values

    def _one(self, ref: str) -> str:
        kind, _, key = ref.partition(":")
        if kind == "file":
            return self._file(key)
        if kind in ("aws-secretsmanager", "aws-ssm"):
            return self._aws(kind, key, ref)
        raise SecretError(f"{ref[:40]!r} is not a secret reference")

    def _file(self, name: str) -> str:
        if name.rstrip("/").rpartition("/")[2] in DOCKER_TLS_FILES:
            # Docker hosts' TLS material lives here too (hosts: tls:): root on a host, never an
            # app's secret. The config check refuses it by name; this holds for a recorded config.
            raise SecretError(f"file:{name} is a Docker host's TLS material, never an app's secret")
        path = safe_file(self.secrets_dir, name)
        try:
            with path.open("rb") as fh:
                raw = fh.read(MAX_VALUE + 1)
        except OSError as exc:
            raise SecretError(f"file:{name} could not be read ({exc.strerror or type(exc).__name__})") from None
        try:
            return raw.decode("utf-8").rstrip("\n")
        except UnicodeDecodeError:
            raise SecretError(f"file:{name} is not UTF-8 text") from None

    def _aws(self, kind: str, key: str, ref: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

        try:
            if kind == "aws-secretsmanager":
                answer = self._client("secretsmanager").get_secret_value(SecretId=key)
                value = answer.get("SecretString")
                if value is None:
                    value = bytes(answer.get("SecretBinary") or b"").decode("utf-8", errors="strict")
                return str(value)
            answer = self._client("ssm").get_parameter(Name=key, WithDecryption=True)
            return str(answer["Parameter"]["Value"])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code in ("ThrottlingException", "InternalServiceError", "InternalServerError"):
                raise TransientError(f"{ref}: AWS answered {code}") from None
            raise SecretError(f"{ref} could not be resolved: {code}") from None
        except EndpointConnectionError as exc:
            raise TransientError(f"{ref}: AWS could not be reached ({type(exc).__name__})") from None
        except (BotoCoreError, UnicodeDecodeError) as exc:
            raise SecretError(f"{ref} could not be resolved: {type(exc).__name__}") from None


def digest(key: bytes, *parts: str) -> str:
    """A keyed digest of what a container runs with (secret values included), for its label:
    a changed secret gives a new digest, and the label tells nothing about the value."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part.encode())
        mac.update(b"\x00")
    return mac.hexdigest()[:16]
