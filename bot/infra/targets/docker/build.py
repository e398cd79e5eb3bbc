"""Builder on the Docker engine: build a context's Dockerfile, push it, skip both when the
registry already holds the tag (asked through the registry's HTTP API v2, over TLS and with the
registry's credentials: bot/infra/targets/docker/registry.py)."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import docker
import requests
from docker.errors import APIError, DockerException

from bot.errors import BuildError, TransientError
from bot.infra.targets.docker.registry import RegistryAccess
from bot.ports import EventSink
from bot.retry import registry_io

# A manifest HEAD must say which manifest kinds we accept, or a v2 registry answers 404 for
# images pushed as OCI or manifest lists.
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])
LOG_TAIL = 20
# What a build says when the engine, not the Dockerfile, is at fault.
ENGINE_HICCUPS = ("unable to find image", "No such image", "layer does not exist", "failed to get layer")
# What a push says when the registry, not the image, is at fault: worth another try.
PUSH_HICCUPS = ("500", "502", "503", "504", "429", "toomanyrequests", "connection refused", "connection reset",
                "timeout", "EOF", "broken pipe", "i/o timeout", "no such host")


def _is_hiccup(exc_or_text: object) -> bool:
    status = getattr(getattr(exc_or_text, "response", None), "status_code", None)
    if isinstance(exc_or_text, requests.RequestException) or (status is not None and (status >= 500 or status == 429)):
        return True
    text = str(exc_or_text).lower()
    return any(word.lower() in text for word in PUSH_HICCUPS)


def split_image(image: str) -> tuple[str, str, str]:
    """`127.0.0.1:5000/web:abc` -> ("127.0.0.1:5000", "web", "abc")."""
    host, _, rest = image.partition("/")
    if not rest or (not any(c in host for c in ".:") and host != "localhost"):
        raise ValueError(f"image must name its registry, e.g. 127.0.0.1:5000/web:sha, got {image!r}")
    name, sep, tag = rest.rpartition(":")
    if not sep or "/" in tag:
        name, tag = rest, "latest"
    return host, name, tag


class DockerBuilder:
    def __init__(self, registry: str = "127.0.0.1:5000", client=None, access: RegistryAccess | None = None):
        self.registry = registry
        self._client = client
        self.access = access or RegistryAccess()

    @property
    def client(self):
        if self._client is None:
            self._client = docker.from_env()
        return self._client

    def image_ref(self, service: str, sha: str) -> str:
        return f"{self.registry}/{service}:{sha}"

    @registry_io
    def image_exists(self, image: str) -> bool:
        host, name, tag = split_image(image)
        return self.access.manifest_exists(host, name, tag, MANIFEST_TYPES)

    def ensure_image(self, context: Path, image: str, on_event: EventSink) -> str:
        if self.image_exists(image):
            on_event(f"image {image} is already in the registry; not building", image=image, step="image_present")
            return image
        on_event(f"building {image} from {context}", image=image, step="build_started")
        self._build(Path(context), image)
        on_event(f"built {image}; pushing", image=image, step="built")
        self._push(image)
        on_event(f"pushed {image}", image=image, step="pushed")
        return image

    def _build(self, context: Path, image: str) -> None:
        if not (context / "Dockerfile").is_file():
            raise BuildError(f"no Dockerfile in {context}")
        log: deque[str] = deque(maxlen=LOG_TAIL)
        try:
            for chunk in self.client.api.build(path=str(context), tag=image, rm=True, forcerm=True, decode=True):
                if "stream" in chunk:
                    log.extend(line for line in chunk["stream"].splitlines() if line.strip())
                if "error" in chunk:
                    log.append(chunk["error"].strip())
                    # The engine's own cache lost a layer under us (another build or a prune):
                    # the engine's hiccup, not the Dockerfile's fault. Built again next pass.
                    kind = TransientError if any(m in chunk["error"] for m in ENGINE_HICCUPS) else BuildError
                    raise kind(f"building {image} failed:\n" + "\n".join(log))
        except requests.RequestException as exc:  # the Docker socket itself: not the build's fault
            raise TransientError(f"building {image}: Docker did not answer: {exc}") from exc
        except (APIError, DockerException) as exc:
            if isinstance(exc, APIError) and exc.status_code and exc.status_code >= 500:
                raise TransientError(f"building {image}: Docker answered {exc.status_code}: {exc}") from exc
            log.append(str(exc))
            raise BuildError(f"building {image} failed:\n" + "\n".join(log)) from exc

    def push(self, image: str) -> None:
        """Push a locally built `image` to its registry and check the registry lists it."""
        self._push(image)

    @registry_io
    def _push(self, image: str) -> None:
        """Push (idempotent: layers already there are skipped); a busy registry is retried."""
        host, name, tag = split_image(image)
        repository = f"{host}/{name}"
        self.access.prepare_push(host, name)
        creds = self.access.push_credentials(host)
        auth = {"auth_config": creds.auth_config()} if creds else {}
        try:
            for chunk in self.client.api.push(repository, tag=tag, stream=True, decode=True, **auth):
                if "error" in chunk:
                    error = str(chunk["error"])[:2000]
                    kind = TransientError if _is_hiccup(error) else BuildError
                    raise kind(f"pushing {image} failed: {error}")
        except (APIError, DockerException, requests.RequestException) as exc:
            kind = TransientError if _is_hiccup(exc) else BuildError
            raise kind(f"pushing {image} failed: {exc}") from exc
        if not self.image_exists(image):
            raise BuildError(f"pushed {image} but the registry does not list it")
