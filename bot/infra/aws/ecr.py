"""Amazon ECR: log in with `get_authorization_token` and push a locally built image with the
Docker SDK, so ECS can pull it. Skips the push when ECR already holds the tag."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import boto3
import docker
from docker.errors import APIError, DockerException

from bot.errors import BuildError
from bot.infra.aws.client import aws_client, call
from bot.infra.aws.errors import AwsNotFoundError, EcrError

__all__ = ["EcrError", "EcrLogin", "EcrRegistry"]


@dataclass(frozen=True)
class EcrLogin:
    registry: str  # host[:port], no scheme: what image references start with
    username: str
    password: str
    expires_at: datetime | None = None

    @property
    def auth_config(self) -> dict:
        return {"username": self.username, "password": self.password}

    def reference(self, repository: str, tag: str) -> str:
        return f"{self.registry}/{repository}:{tag}"


def parse_authorization(data: dict) -> EcrLogin:
    """EcrLogin from one `authorizationData` item: base64 `user:password` and the proxy endpoint."""
    try:
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    except (KeyError, ValueError) as exc:
        raise EcrError(f"ECR returned an authorization token that is not base64 user:password: {exc}",
                       operation="get_authorization_token") from exc
    if not password:
        raise EcrError("ECR returned an authorization token without a password", operation="get_authorization_token")
    registry = data.get("proxyEndpoint", "").removeprefix("https://").removeprefix("http://").rstrip("/")
    return EcrLogin(registry, username, password, data.get("expiresAt"))


def on_aws(endpoint_url: str) -> bool:
    """Whether an API endpoint is AWS's own (not a stand-in such as moto named by AWS_ENDPOINT_URL)."""
    host = urlsplit(endpoint_url).hostname or ""
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


class EcrRegistry:
    """ECR for one account and region. `registry` overrides the proxy endpoint ECR returns
    (a pull-through or test registry; the tests use 127.0.0.1:5000).

    Against a stand-in ECR API (AWS_ENDPOINT_URL set to moto) with no `registry` given, the
    proxy endpoint it returns names a registry that does not exist, so nothing is pushed: the
    image stays where Mainline's builder put it (MAINLINE_REGISTRY) and ECS is told to run that.
    """

    def __init__(self, session: boto3.Session | None = None, region: str = "us-east-1",
                 docker_client=None, registry: str | None = None):
        self.ecr = aws_client(session, "ecr", region)
        self.registry = registry
        self._docker = docker_client

    @property
    def docker(self):
        if self._docker is None:
            self._docker = docker.from_env()
        return self._docker

    def login(self) -> EcrLogin:
        data = call(self.ecr, "get_authorization_token").get("authorizationData", [])
        if not data:
            raise EcrError("ECR returned no authorization data", operation="get_authorization_token")
        login = parse_authorization(data[0])
        if self.registry:
            login = EcrLogin(self.registry, login.username, login.password, login.expires_at)
        return login

    def image_exists(self, repository: str, tag: str) -> bool:
        try:
            resp = call(self.ecr, "describe_images", repositoryName=repository, imageIds=[{"imageTag": tag}])
        except AwsNotFoundError as exc:
            if exc.code == "ImageNotFoundException":
                return False
            raise EcrError(str(exc), exc.code, exc.operation) from exc
        return any(tag in image.get("imageTags", []) for image in resp.get("imageDetails", []))

    def ensure_repository(self, repository: str) -> bool:
        """Create the ECR repository when it is missing (scanned on push); True when created."""
        try:
            call(self.ecr, "describe_repositories", repositoryNames=[repository])
            return False
        except AwsNotFoundError as exc:
            if exc.code != "RepositoryNotFoundException":
                raise EcrError(str(exc), exc.code, exc.operation) from exc
        call(self.ecr, "create_repository", repositoryName=repository,
             imageScanningConfiguration={"scanOnPush": True})
        return True

    def push(self, image: str, repository: str, tag: str) -> str:
        """Push the local `image` to `repository:tag` in ECR; the reference ECS should run."""
        if not self.registry and not on_aws(self.ecr.meta.endpoint_url):
            return image
        login = self.login()
        target = login.reference(repository, tag)
        self.ensure_repository(repository)
        # Against a stand-in registry ECR's own listing knows nothing of the push, so only
        # trust it when pushing to ECR itself.
        if not self.registry and self.image_exists(repository, tag):
            return target
        try:
            self.docker.images.get(image).tag(f"{login.registry}/{repository}", tag=tag)
            for chunk in self.docker.images.push(f"{login.registry}/{repository}", tag=tag,
                                                 auth_config=login.auth_config, stream=True, decode=True):
                if "error" in chunk:
                    raise BuildError(f"pushing {target} failed: {chunk['error']}")
        except (APIError, DockerException) as exc:
            raise BuildError(f"pushing {image} to {target} failed: {exc}") from exc
        return target
