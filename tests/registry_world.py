"""A private registry as teams run one: Docker's registry (the same `docker-registry` binary as
scripts/services.sh runs) on its own 127.0.0.1 port, over TLS with its own CA, and htpasswd auth.
The engine trusts the CA the way Docker documents it: /etc/docker/certs.d/HOST/ca.crt."""

from __future__ import annotations

import contextlib
import datetime
import io
import ipaddress
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERTS_D = Path("/etc/docker/certs.d")


@dataclass(frozen=True)
class PrivateRegistry:
    host: str  # 127.0.0.1:PORT
    username: str
    password: str
    ca: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mainline test registry")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "registry.crt", directory / "registry.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextlib.contextmanager
def private_registry(directory: Path, username: str = "deployer",
                     password: str = "s3cret-registry-token-9f2") -> Iterator[PrivateRegistry]:
    """Run the registry until the block ends; the engine trusts its CA meanwhile."""
    port = free_port()
    host = f"127.0.0.1:{port}"
    cert, key = _self_signed(directory)
    htpasswd = directory / "htpasswd"
    htpasswd.write_text(f"{username}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    (directory / "data").mkdir()
    config = directory / "registry.yml"
    config.write_text(f"""version: 0.1
log: {{level: warn}}
storage: {{filesystem: {{rootdirectory: {directory / "data"}}}}}
http:
  addr: {host}
  tls: {{certificate: {cert}, key: {key}}}
auth:
  htpasswd: {{realm: mainline-test, path: {htpasswd}}}
""")
    trusted = CERTS_D / host
    trusted.mkdir(parents=True, exist_ok=True)
    shutil.copy(cert, trusted / "ca.crt")
    log = (directory / "registry.log").open("w")
    proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(80):
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"https://{host}/v2/", verify=str(cert), timeout=1).status_code == 401:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the test registry did not start on {host}: {(directory / 'registry.log').read_text()}")
        yield PrivateRegistry(host, username, password, cert)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(trusted, ignore_errors=True)


def tiny_context(text: str = "hello from mainline\n") -> io.BytesIO:
    """A build context (a tar) of one file FROM scratch: nothing to pull."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY hello.txt /hello.txt\n"), ("hello.txt", text.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf
