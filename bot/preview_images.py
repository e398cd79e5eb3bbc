"""The size change between the live image and the one a preview's sha would run, best effort.

Sizes come from the registry's manifests (the sum of the config and layer blobs, compressed, as
the registry stores them), read with the builder's TLS and credentials. Only our own registry is
asked (`PipelineOptions.registry`), never a host an image name happens to hold; an absent image
or an unreachable registry means no size."""

from __future__ import annotations

import logging

from bot.errors import MainlineError
from bot.infra.targets.docker.registry import RegistryAccess

log = logging.getLogger("mainline.preview")

TIMEOUT = 2.0
IMAGES = ("application/vnd.docker.distribution.manifest.v2+json", "application/vnd.oci.image.manifest.v1+json")
INDEXES = ("application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.oci.image.index.v1+json")
MANIFESTS = ", ".join(IMAGES + INDEXES)


def image_change(pipeline, service: str, live_image: str | None, sha: str) -> dict | None:
    """`{"live", "live_bytes", "new", "new_bytes", "delta_bytes"}` when both images are in the
    registry; None otherwise."""
    registry = pipeline.opts.registry
    new_image = f"{registry}/{service}:{sha}"
    if not live_image or live_image == new_image:
        return None
    access = getattr(pipeline.ctx.w.builder, "registry_access", None)  # fakes have none: anonymous
    live_bytes = manifest_size(registry, live_image, access)
    new_bytes = manifest_size(registry, new_image, access) if live_bytes is not None else None
    if live_bytes is None or new_bytes is None:
        return None
    return {"live": live_image, "live_bytes": live_bytes, "new": new_image, "new_bytes": new_bytes,
            "delta_bytes": new_bytes - live_bytes}


def manifest_size(registry: str, image: str, access: RegistryAccess | None = None) -> int | None:
    """The stored size of `registry/name:tag`, or None when it is not there (or not ours)."""
    if not image.startswith(registry + "/"):
        return None
    # The repository path holds the registry's own path too: ghcr.io/acme + web -> acme/web on ghcr.io.
    host, _, path = registry.partition("/")
    name, _, tag = image[len(registry) + 1:].rpartition(":")
    if not name or not tag or "/" in tag:
        return None
    name = f"{path}/{name}" if path else name
    access = access or RegistryAccess(timeout=TIMEOUT)
    manifest = _manifest(access, host, name, tag)
    if manifest and manifest.get("mediaType") in INDEXES:
        first = next(iter(manifest.get("manifests") or []), None)
        manifest = _manifest(access, host, name, first["digest"]) if first and first.get("digest") else None
    if not manifest or "layers" not in manifest:
        return None
    blobs = [manifest.get("config") or {}, *manifest["layers"]]
    return sum(int(b.get("size") or 0) for b in blobs)


def _manifest(access: RegistryAccess, host: str, name: str, reference: str) -> dict | None:
    try:
        return access.manifest(host, name, reference, MANIFESTS)
    except MainlineError as exc:  # unreachable, refused, a 5xx: no size, the preview goes on
        log.info("preview: no image size for %s:%s (%s)", name, reference[:20], exc)
        return None


def human_bytes(size: int) -> str:
    """`1.2 MB`, `-340 kB`: sizes as people compare them."""
    sign = "-" if size < 0 else ""
    value = float(abs(size))
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1000
    return f"{sign}{value:.1f} GB"
