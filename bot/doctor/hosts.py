"""The doctor's checks of the Docker hosts an environment's `hosts:` may name (MAINLINE_DOCKER_HOSTS):
the SSH settings (MAINLINE_SSH_KEY, MAINLINE_SSH_KNOWN_HOSTS) and one line per host, connected
exactly as the docker target connects (bot/infra/targets/docker/hosts.py's HostAccess), with the
engine's version or what went wrong and its fix. Key material is never read into a line: a key is
named by its path, type and public fingerprint."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.doctor.findings import Finding, fail, ok, skip
from bot.doctor.hosts_why import diagnose, ssh_parts

AREA = "docker host"
TLS_NAMES = ("ca.pem", "cert.pem", "key.pem")


def checks(settings, tls_dirs: dict[str, list[str]], scrub: Callable[[str], str] = str) -> Iterator[Finding]:
    """Every line about MAINLINE_DOCKER_HOSTS; `tls_dirs` maps a tcp:// endpoint to the tls:
    directories deploy.yml files (or `--docker-tls`) name for it."""
    from bot.config_hosts import check_host_url
    from bot.infra.targets.docker.hosts import HostAccess

    allowed = settings.docker_host_list()
    if not allowed:
        yield skip(AREA + "s", "MAINLINE_DOCKER_HOSTS", "not set: environments run on the worker's own engine "
                   "(DOCKER_HOST), and a deploy.yml that lists hosts: is refused")
        return
    valid = []
    for url in allowed:
        try:
            valid.append(check_host_url(url))
        except ValueError as exc:
            yield fail(AREA, url[:100], str(exc), "fix MAINLINE_DOCKER_HOSTS: comma-separated unix:///path, "
                       "tcp://HOST:PORT or ssh://USER@HOST[:PORT]")
    if any(url.startswith("ssh://") for url in valid):
        yield from ssh_key(settings.ssh_key)
        yield from known_hosts(settings.ssh_known_hosts)
    access = HostAccess(tuple(valid), settings.secrets_dir, settings.ssh_key, settings.ssh_known_hosts)
    jobs: list[tuple[str, str | None]] = []
    for url in valid:  # a tcp:// host once per tls: directory named for it
        named: list[str | None] = list(tls_dirs.get(url, [])) if url.startswith("tcp://") else []
        jobs.extend((url, tls) for tls in named or [None])
    with ThreadPoolExecutor(max_workers=min(8, len(jobs) or 1), thread_name_prefix="doctor-host") as pool:
        for finding in pool.map(lambda job: host(access, settings, job[0], job[1]), jobs):
            yield Finding(finding.area, finding.what, finding.status, scrub(finding.detail), finding.fix)


def ssh_key(path: Path | None) -> Iterator[Finding]:
    """MAINLINE_SSH_KEY: there, readable by this user, by nobody else, a key without a passphrase."""
    import paramiko

    what = "MAINLINE_SSH_KEY"
    if path is None:
        yield skip(AREA + "s", what, "not set: ssh:// hosts are tried with this user's ~/.ssh keys and ssh-agent")
        return
    if not path.is_file():
        yield fail(AREA + "s", what, f"no file at {path}", "ssh-keygen -t ed25519 -N '' -f PATH, then point "
                   "MAINLINE_SSH_KEY at it and put PATH.pub in each ssh:// host's authorized_keys")
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if not os.access(path, os.R_OK):
        yield fail(AREA + "s", what, f"{path} is not readable by this user (uid {os.getuid()})",
                   f"chown the key to the user the worker runs as, and chmod 600 {path}")
        return
    if mode & 0o077:
        yield fail(AREA + "s", what, f"{path} is readable by others (mode {mode:04o})", f"chmod 600 {path}")
        return
    try:
        key = paramiko.PKey.from_path(str(path))
    except (paramiko.PasswordRequiredException, TypeError) as exc:
        if not isinstance(exc, paramiko.PasswordRequiredException) and "password" not in str(exc):
            raise
        yield fail(AREA + "s", what, f"{path} is protected by a passphrase, which Mainline cannot type",
                   "make a key without one for Mainline alone (ssh-keygen -t ed25519 -N '')")
        return
    except (paramiko.SSHException, ValueError, OSError) as exc:
        yield fail(AREA + "s", what, f"{path} is not a private key paramiko reads ({type(exc).__name__})",
                   "use an OpenSSH private key (ssh-keygen -t ed25519 -N '')")
        return
    yield ok(AREA + "s", what, f"{path}: {key.algorithm_name} key {key.fingerprint}, mode {mode:04o}")


def known_hosts(path: Path | None) -> Iterator[Finding]:
    """MAINLINE_SSH_KNOWN_HOSTS (or ~/.ssh/known_hosts): present and readable; host keys are
    checked strictly, so an ssh:// host missing from it is refused."""
    import paramiko

    what = "MAINLINE_SSH_KNOWN_HOSTS"
    unset = path is None
    path = path or Path.home() / ".ssh" / "known_hosts"
    origin = " (MAINLINE_SSH_KNOWN_HOSTS is not set)" if unset else ""
    if not path.is_file():
        yield fail(AREA + "s", what, f"no file at {path}{origin}: every ssh:// host's key is unknown",
                   "ssh-keyscan -p PORT HOST >> FILE for each ssh:// host (compare the fingerprints with "
                   "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the host), and set "
                   "MAINLINE_SSH_KNOWN_HOSTS=FILE")
        return
    try:
        keys = paramiko.HostKeys(str(path))
    except (OSError, paramiko.SSHException) as exc:
        yield fail(AREA + "s", what, f"{path} cannot be read: {type(exc).__name__}",
                   "make it readable by the worker's user, one `host keytype key` a line (ssh-keyscan's output)")
        return
    yield ok(AREA + "s", what, f"{path}{origin}: {len(keys)} host(s) known")


def host(access, settings, url: str, tls: str | None) -> Finding:
    """One endpoint, connected the way the docker target connects, and asked its version."""
    from bot.domain.app import DockerHost
    from bot.errors import InfrastructureFailure

    how = ""
    if url.startswith("tcp://"):
        if tls is None:
            return skip(AREA, url, "no deploy.yml Mainline knows names its tls: directory yet; check it with "
                        f"`mainline doctor --docker-tls {url}=DIR`")
        found = tls_material(settings.secrets_dir, url, tls)
        if found is not None:
            return found
        how = f" with mutual TLS ({tls})"
    elif url.startswith("ssh://"):
        how = " over SSH"
    else:  # looked at first: docker-py leaves a socket open when it cannot connect to a unix path
        socket_path = Path(url.removeprefix("unix://"))
        if not socket_path.is_socket():
            return fail(AREA, url, f"not answering: no engine behind {socket_path} (no socket there)",
                        "is dockerd running on the worker's machine (systemctl start docker) with this socket?")
        if not os.access(socket_path, os.R_OK | os.W_OK):
            return fail(AREA, url, f"this user (uid {os.getuid()}) may not open {socket_path}",
                        "add the worker's user to the `docker` group (or the group that owns the socket)")
    try:
        client = access.connect(DockerHost(url, tls or ""))
    except InfrastructureFailure as exc:
        return fail(AREA, url, str(exc), "see docs/self-hosting.md#several-docker-hosts")
    except Exception as exc:  # classified below; one host's failure must not hide the others
        detail, fix = diagnose(url, exc, settings, tls)
        return fail(AREA, url, detail, fix)
    try:
        version = client.version()
    except Exception as exc:
        detail, fix = diagnose(url, exc, settings, tls)
        return fail(AREA, url, detail, fix)
    finally:
        client.close()
    return ok(AREA, url, f"connected{how}: Docker {version.get('Version')} (API {version.get('ApiVersion')})")


def tls_material(secrets_dir: Path | None, url: str, tls: str) -> Finding | None:
    """A failing line when the tls: directory of `url` is not under MAINLINE_SECRETS_DIR or lacks a file."""
    if secrets_dir is None:
        return fail(AREA, url, f"MAINLINE_SECRETS_DIR is not set, and the TLS material ({tls}) lives under it",
                    f"set MAINLINE_SECRETS_DIR and put ca.pem, cert.pem and key.pem in its {tls}/")
    root = secrets_dir.resolve()
    folder = (root / tls).resolve()
    if not folder.is_relative_to(root):
        return fail(AREA, url, f"tls: {tls} is not a directory under MAINLINE_SECRETS_DIR",
                    "name a directory under MAINLINE_SECRETS_DIR")
    missing = [str(folder / name) for name in TLS_NAMES if not (folder / name).is_file()]
    if missing:
        return fail(AREA, url, "TLS material missing: " + ", ".join(missing),
                    "copy there the client side of dockerd's --tlsverify set-up: ca.pem (the CA that signed "
                    "the engine's --tlscert), cert.pem and key.pem (a client certificate that CA signed)")
    return None


def stored_tls_dirs(database_url: str) -> dict[str, list[str]]:
    """tcp:// endpoint -> the tls: directories the deploy.yml files Mainline last read name for it."""
    from bot.config import ConfigError, parse_config
    from bot.infra.db.maintenance import DatabaseError, schema_state
    from bot.infra.db.store import Store

    try:
        if not schema_state(database_url).at_head:
            return {}
    except DatabaseError:
        return {}
    store = Store(database_url)
    found: dict[str, list[str]] = {}
    try:
        for row in store.services():
            try:
                config = parse_config(row.config_text or "")
            except ConfigError:
                continue
            for environment in config.environments.values():
                for entry in environment.hosts:
                    if entry.tls and entry.tls not in found.setdefault(entry.url, []):
                        found[entry.url].append(entry.tls)
    finally:
        store.engine.dispose()
    return found


__all__ = ["checks", "known_hosts", "ssh_key", "ssh_parts", "stored_tls_dirs", "tls_material"]
