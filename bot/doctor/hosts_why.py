"""Why a Docker host did not answer the doctor, and the fix: the error a connection raised is
looked at down its chain (docker-py wraps requests', which wraps ssl's, urllib3's or paramiko's)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from urllib.parse import urlsplit

import paramiko
import requests

FORCED = ('command="docker system dial-stdio",no-pty,no-agent-forwarding,no-X11-forwarding,'
          'no-port-forwarding')


def ssh_parts(url: str) -> tuple[str, str, int]:
    """(user, host, port) of ssh://USER@HOST[:PORT]."""
    parts = urlsplit(url)
    return parts.username or "", parts.hostname or "", parts.port or 22


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen) or len(seen) > 20:
            continue
        seen.append(current)
        todo.extend([current.__cause__, current.__context__, *[a for a in current.args
                                                              if isinstance(a, BaseException)]])
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
    return seen


def _short(exc: BaseException) -> str:
    if getattr(exc, "verify_message", None):  # ssl.SSLCertVerificationError: why, in a few words
        return f"certificate verify failed: {exc.verify_message}"  # type: ignore[attr-defined]
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def diagnose(url: str, exc: BaseException, settings, tls: str | None) -> tuple[str, str]:
    """(what went wrong, the fix) for `url`'s failed connection."""
    chain = _chain(exc)
    if url.startswith("ssh://"):
        return _ssh(url, chain, settings)
    if url.startswith("tcp://"):
        return _tcp(url, chain, settings, tls or "")
    return _unix(url, chain)


def _ssh(url: str, chain: list[BaseException], settings) -> tuple[str, str]:
    user, hostname, port = ssh_parts(url)
    known = settings.ssh_known_hosts or "~/.ssh/known_hosts"
    key = settings.ssh_key or "the worker's ~/.ssh key"
    name = hostname if port == 22 else f"[{hostname}]:{port}"
    scan = f"ssh-keyscan -p {port} {hostname} >> {known}"
    for exc in chain:
        if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) in (str(known), str(key)):
            setting = "MAINLINE_SSH_KNOWN_HOSTS" if str(exc.filename) == str(known) else "MAINLINE_SSH_KEY"
            return (f"{setting} names {exc.filename}, which does not exist", f"see the {setting} line above")
        if isinstance(exc, paramiko.BadHostKeyException):
            return (f"{name}'s host key is not the one {known} holds (possibly an impostor, or the host was "
                    "reinstalled)", f"check the new key on the host itself (ssh-keygen -lf "
                    f"/etc/ssh/ssh_host_ed25519_key.pub), then `ssh-keygen -R '{name}' -f {known}` and `{scan}`")
        if isinstance(exc, paramiko.PasswordRequiredException) or (isinstance(exc, TypeError)
                                                                     and "password" in str(exc)):
            return (f"{key} is protected by a passphrase", "give Mainline a key without one (ssh-keygen -N '')")
        if isinstance(exc, paramiko.AuthenticationException):
            return (f"sshd on {hostname}:{port} refused {key} for {user}",
                    f"append {key}.pub to ~{user}/.ssh/authorized_keys on {hostname}, as `{FORCED} ssh-ed25519 "
                    "AAAA… mainline` (the forced command lets the key do nothing but speak to Docker)")
        if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
            return (f"{name}'s host key is unknown: it is not in {known} (host keys are checked strictly)",
                    f"`{scan}`, after comparing the fingerprint with `ssh-keygen -lf "
                    "/etc/ssh/ssh_host_ed25519_key.pub` on the host")
        if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError | ConnectionRefusedError
                      | socket.timeout | socket.gaierror):
            return (f"not answering: nothing accepts SSH at {hostname}:{port} ({_short(exc)})",
                    f"is sshd running and listening on {hostname}:{port}, and the port open to the worker?")
    if any(isinstance(exc, requests.ConnectionError | paramiko.ChannelException | EOFError) for exc in chain):
        return (f"sshd let {user} in, but `docker system dial-stdio` did not answer ({_short(chain[-1])})",
                f"on {hostname}, install the docker CLI for {user} and let {user} reach the engine (the docker "
                "group); `docker version` run as that user must work")
    return (f"cannot reach the engine: {_short(chain[-1])}",
            f"check `ssh -i {key} -p {port} {user}@{hostname} docker system dial-stdio` as the worker's user")


def _tcp(url: str, chain: list[BaseException], settings, tls: str) -> tuple[str, str]:
    hostport = url.removeprefix("tcp://")
    folder = Path(settings.secrets_dir or "MAINLINE_SECRETS_DIR") / tls
    # ssl's own errors (innermost, the clearest) before requests' wrappers of them
    ssl_errors = sorted((exc for exc in chain if isinstance(exc, ssl.SSLError | requests.exceptions.SSLError)),
                        key=lambda exc: not isinstance(exc, ssl.SSLError))
    text = " ".join(str(exc) for exc in ssl_errors)
    if "KEY_VALUES_MISMATCH" in text or "key values mismatch" in text:
        return (f"{folder}/key.pem is not the key of {folder}/cert.pem",
                "copy cert.pem and key.pem from the same client certificate")
    if "mismatch" in text and ("IP address" in text or "Hostname" in text or "hostname" in text):
        return (f"the engine's certificate does not name {hostport.rpartition(':')[0]}",
                "sign dockerd's --tlscert with subjectAltName = IP:ADDRESS (or DNS:NAME) for the address in "
                "MAINLINE_DOCKER_HOSTS")
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return (f"the engine's certificate is not signed by {folder}/ca.pem ({_short(ssl_errors[0])})",
                f"copy into {folder}/ca.pem the CA that signed dockerd's --tlscert")
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return (f"{hostport} does not speak TLS", "start dockerd with --tlsverify --tlscacert --tlscert --tlskey: "
                "Docker's API in the clear gives root to whoever reaches it")
    if ssl_errors and any(word in text.lower() for word in ("unknown ca", "bad certificate", "certificate required",
                                                            "alert")):
        return (f"the engine refused {folder}/cert.pem ({_short(ssl_errors[0])})",
                "sign cert.pem (extendedKeyUsage = clientAuth) with the CA dockerd's --tlscacert names")
    if ssl_errors:
        return (f"TLS failed: {_short(ssl_errors[0])}", f"check ca.pem, cert.pem and key.pem in {folder}")
    if any(isinstance(exc, requests.ConnectionError | ConnectionError | socket.timeout | TimeoutError)
           for exc in chain):
        return (f"not answering: nothing accepts connections at {hostport} ({_short(chain[-1])})",
                f"is dockerd listening on {hostport} (dockerd -H tcp://0.0.0.0:{hostport.rpartition(':')[2]} "
                "--tlsverify …), and the port open to the worker?")
    return (f"cannot reach the engine: {_short(chain[-1])}", f"check dockerd on {hostport} and the files in {folder}")


def _unix(url: str, chain: list[BaseException]) -> tuple[str, str]:
    path = url.removeprefix("unix://")
    if any(isinstance(exc, PermissionError) for exc in chain):
        return (f"this user may not open {path}", "add the worker's user to the `docker` group (or the group "
                "that owns the socket), then start the worker again")
    if any(isinstance(exc, FileNotFoundError | ConnectionRefusedError | requests.ConnectionError) for exc in chain):
        return (f"not answering: no engine behind {path} ({_short(chain[-1])})",
                "is dockerd running on the worker's machine (systemctl start docker) with this socket (-H unix://…)?")
    return (f"cannot reach the engine: {_short(chain[-1])}", f"check dockerd behind {path}")
