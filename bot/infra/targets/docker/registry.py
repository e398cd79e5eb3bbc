"""An image registry reached the way Docker reaches it: HTTPS first, trusting the CA the engine
trusts (`/etc/docker/certs.d/HOST/ca.crt`); plain HTTP only for a loopback registry or one named
insecure; and the Docker Registry v2 auth challenge (Basic, or a Bearer token from the realm).

Credentials come, in this order, from MAINLINE_REGISTRY_USERNAME and MAINLINE_REGISTRY_PASSWORD
(GHCR's or Docker Hub's user and token), ECR's token (boto3 `get_authorization_token`, for an ECR
host or MAINLINE_REGISTRY_AUTH=ecr), or Docker's own config (`docker login`, `credsStore`,
`credHelpers`). They are sent to the registry only; never logged, never in an event."""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from bot.errors import AuthError, BuildError, TransientError

log = logging.getLogger("mainline.registry")

CERTS_D = Path("/etc/docker/certs.d")
ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
FIX = ("run `docker login {host}` as the worker's user, or set MAINLINE_REGISTRY_USERNAME and "
       "MAINLINE_REGISTRY_PASSWORD (for ECR: AWS credentials allowed ecr:GetAuthorizationToken)")


class RegistryAuthError(AuthError, BuildError):
    """The registry refused us: no credentials, wrong ones, or not allowed this repository."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    source: str = "MAINLINE_REGISTRY_USERNAME"  # where they came from, for messages

    def auth_config(self) -> dict[str, str]:
        """What the Docker SDK's push and pull take as `auth_config`."""
        return {"username": self.username, "password": self.password}

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


CredentialSource = Callable[[str], "Credentials | None"]


def docker_config_credentials(host: str) -> Credentials | None:
    """What `docker login HOST` stored: config.json's `auths`, or its credential helper."""
    from docker.auth import load_config
    from docker.errors import DockerException

    try:
        with warnings.catch_warnings(record=True) as said:  # docker-py warns of a missing helper
            warnings.simplefilter("always")
            entry: dict[str, Any] = load_config().resolve_authconfig(host) or {}
    except DockerException as exc:
        raise RegistryAuthError(f"Docker's credential helper failed for {host}: {exc}") from exc
    finally:
        for warning in said:
            log.warning("Docker's config for %s: %s", host, warning.message)
    username = entry.get("username") or entry.get("Username")
    password = entry.get("password") or entry.get("Password")
    if entry.get("IdentityToken"):
        username, password = "<token>", entry["IdentityToken"]
    if not (username and password):
        return None
    return Credentials(username, password, source="Docker's config (docker login)")


def ecr_credentials(session=None, region: str | None = None) -> CredentialSource:
    """ECR's 12-hour token, asked for again when it has expired."""
    lock = threading.Lock()
    cached: dict[str, Any] = {}

    def get(host: str) -> Credentials:
        from datetime import UTC, datetime, timedelta

        from bot.infra.aws.ecr import EcrRegistry

        with lock:
            expires = cached.get("expires")
            if cached.get("creds") is None or expires is None or expires - timedelta(minutes=10) < datetime.now(UTC):
                match = ECR_HOST.match(host)
                login = EcrRegistry(session, region=(match and match["region"]) or region or "us-east-1").login()
                cached["creds"] = Credentials(login.username, login.password, source="ECR's authorization token")
                cached["expires"] = login.expires_at
            return cached["creds"]

    return get


def ecr_repositories(session=None, region: str | None = None) -> Callable[[str, str], None]:
    """Before a push to ECR: create the repository when it is missing (ECR refuses pushes to an
    unknown one), once per repository and process."""
    done: set[tuple[str, str]] = set()
    lock = threading.Lock()

    def ensure(host: str, name: str) -> None:
        import boto3

        from bot.infra.aws.ecr import EcrRegistry

        with lock:
            if (host, name) in done:
                return
            match = ECR_HOST.match(host)
            where = (match and match["region"]) or region or boto3.Session().region_name or "us-east-1"
            EcrRegistry(session, region=where).ensure_repository(name)
            done.add((host, name))

    return ensure


def loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RegistryAccess:
    """Manifest lookups and logins against one or more registries, with their credentials."""

    def __init__(self, credentials: CredentialSource | None = None, insecure: bool = False,
                 certs_d: Path = CERTS_D, timeout: float = 10.0,
                 before_push: Callable[[str, str], None] | None = None):
        self._credentials = credentials or docker_config_credentials
        self._before_push = before_push
        self.insecure = insecure
        self.certs_d = certs_d
        self.timeout = timeout
        self._schemes: dict[str, str] = {}

    def credentials(self, host: str) -> Credentials | None:
        return self._credentials(host)

    def push_credentials(self, host: str) -> Credentials | None:
        """The login a push presents; a broken credential helper leaves the push anonymous (an open
        registry takes it, a closed one refuses it naming the fix) rather than failing here."""
        try:
            return self.credentials(host)
        except RegistryAuthError as exc:
            log.warning("registry %s: no credentials for the push: %s", host, exc)
            return None

    def prepare_push(self, host: str, name: str) -> None:
        """What the registry needs before a push of `name` (ECR: the repository must exist)."""
        if self._before_push is not None:
            self._before_push(host, name)

    def login(self, host: str) -> str:
        """Authenticate against the registry's `/v2/` as `docker login` does; says how."""
        _, creds = self._get(host, "/v2/", scope=None)
        return f"{host}: logged in as {creds.username} ({creds.source})" if creds else f"{host}: open, no login needed"

    def manifest_exists(self, host: str, name: str, tag: str, accept: str) -> bool:
        resp, _ = self._get(host, f"/v2/{name}/manifests/{tag}", scope=f"repository:{name}:pull",
                            headers={"Accept": accept}, method="HEAD", ok=(200, 404))
        return resp.status_code == 200

    def manifest(self, host: str, name: str, reference: str, accept: str) -> dict | None:
        """The manifest of `name:reference` as JSON, None when the registry has no such image."""
        resp, _ = self._get(host, f"/v2/{name}/manifests/{reference}", scope=f"repository:{name}:pull",
                            headers={"Accept": accept}, ok=(200, 404))
        if resp.status_code == 404:
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    # -- HTTP ------------------------------------------------------------------------------

    def _get(self, host: str, path: str, scope: str | None, headers: dict[str, str] | None = None,
             method: str = "GET", ok: tuple[int, ...] = (200,)) -> tuple[requests.Response, Credentials | None]:
        """The response, and the credentials it took (looked up only when the registry asks)."""
        headers = dict(headers or {})
        creds = None
        resp = self._send(method, host, path, headers)
        if resp.status_code == 401:
            creds = self.credentials(host)
            headers["Authorization"] = self._answer(host, resp.headers.get("WWW-Authenticate", ""), scope, creds)
            resp = self._send(method, host, path, headers)
        if resp.status_code in ok:
            return resp, creds
        if resp.status_code >= 500 or resp.status_code == 429:
            raise TransientError(f"registry {host} answered {resp.status_code} for {path}")
        if resp.status_code in (401, 403):
            who = f"the credentials from {creds.source}" if creds else "no credentials"
            raise RegistryAuthError(f"registry {host} refused {who} ({resp.status_code}) for {path}: "
                                    + FIX.format(host=host))
        raise BuildError(f"registry {host} answered {resp.status_code} for {path}")

    def _answer(self, host: str, challenge: str, scope: str | None, creds: Credentials | None) -> str:
        """The Authorization header that answers a 401's WWW-Authenticate challenge."""
        kind, _, params_text = challenge.partition(" ")
        if kind.lower() == "basic":
            if creds is None:
                raise RegistryAuthError(f"registry {host} needs a login and none is configured: "
                                        + FIX.format(host=host))
            return creds.basic()
        if kind.lower() != "bearer":
            raise RegistryAuthError(f"registry {host} asks for {kind or 'an unknown'} authentication, "
                                    "which Mainline does not speak (Basic and Bearer only)")
        params = dict(_CHALLENGE.findall(params_text))
        realm = params.get("realm", "")
        if not realm.startswith(("https://", "http://")):
            raise RegistryAuthError(f"registry {host} named no token realm in its challenge")
        realm_host = urlsplit(realm).netloc
        if realm.startswith("http://") and not (self.insecure or loopback(realm_host)):
            # Our login would cross the network in clear text to wherever the challenge points.
            raise RegistryAuthError(f"registry {host} sends logins to {realm_host} over plain HTTP; refused")
        query = {k: v for k, v in (("service", params.get("service")), ("scope", scope or params.get("scope"))) if v}
        try:
            resp = requests.get(realm, params=query, timeout=self.timeout, verify=self._verify(host),
                                headers={"Authorization": creds.basic()} if creds else {})
        except requests.RequestException as exc:
            raise TransientError(f"registry {host}: its token service {realm} did not answer: "
                                 f"{type(exc).__name__}") from exc
        if resp.status_code != 200:
            who = f"the credentials from {creds.source}" if creds else "an anonymous request"
            raise RegistryAuthError(f"registry {host}'s token service refused {who} ({resp.status_code}): "
                                    + FIX.format(host=host))
        body = resp.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryAuthError(f"registry {host}'s token service answered no token")
        return f"Bearer {token}"

    def _send(self, method: str, host: str, path: str, headers: dict[str, str]) -> requests.Response:
        scheme = self._schemes.get(host, "https")
        try:
            return self._request(method, f"{scheme}://{host}{path}", host, headers)
        except (requests.exceptions.SSLError, requests.ConnectionError) as exc:
            if scheme == "http" or not (self.insecure or loopback(host)):
                raise TransientError(f"registry {host} unreachable over {scheme}: {type(exc).__name__}") from exc
        # As dockerd does for a loopback (or insecure) registry: HTTPS failed, so plain HTTP.
        try:
            resp = self._request(method, f"http://{host}{path}", host, headers)
        except requests.RequestException as exc:
            raise TransientError(f"registry {host} unreachable: {type(exc).__name__}") from exc
        self._schemes[host] = "http"
        return resp

    def _request(self, method: str, url: str, host: str, headers: dict[str, str]) -> requests.Response:
        try:
            return requests.request(method, url, headers=headers, timeout=self.timeout,
                                    verify=self._verify(host), cert=self._client_cert(host), allow_redirects=True)
        except (requests.exceptions.SSLError, requests.ConnectionError):
            raise
        except requests.RequestException as exc:
            raise TransientError(f"registry {host}: {type(exc).__name__}") from exc

    def _verify(self, host: str) -> str | bool:
        ca = self.certs_d / host / "ca.crt"
        return str(ca) if ca.is_file() else True

    def _client_cert(self, host: str) -> tuple[str, str] | None:
        cert, key = self.certs_d / host / "client.cert", self.certs_d / host / "client.key"
        return (str(cert), str(key)) if cert.is_file() and key.is_file() else None


def registry_access(username: str | None = None, password: str | None = None, mode: str = "auto",
                    insecure: bool = False) -> RegistryAccess:
    """The access the settings describe (see the module docstring for the order)."""
    ecr = ecr_credentials()
    repositories = ecr_repositories()

    def before_push(host: str, name: str) -> None:
        if mode == "ecr" or (mode == "auto" and ECR_HOST.match(host)):
            repositories(host, name)

    def credentials(host: str) -> Credentials | None:
        if mode == "none":
            return None
        if username and password and mode in ("auto", "basic"):
            return Credentials(username, password)
        if mode == "ecr" or (mode == "auto" and ECR_HOST.match(host)):
            return ecr(host)
        return docker_config_credentials(host)

    return RegistryAccess(credentials, insecure=insecure, before_push=before_push)


def access_for(settings) -> RegistryAccess:
    """`registry_access` from the settings (MAINLINE_REGISTRY_*)."""
    password = settings.registry_password.get_secret_value() if settings.registry_password else None
    return registry_access(settings.registry_username, password, settings.registry_auth, settings.registry_insecure)
