"""TLS settings reach haproxy.cfg: a certificate path or redirect address that would add a line
or an option is refused at the last step too (the config schema refuses it first), and a
certificate name that leaves MAINLINE_SECRETS_DIR is never read."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bot.cli import main
from bot.errors import SecretError
from bot.infra.targets.docker.haproxy import HAProxy, UnsafeConfigError
from bot.infra.targets.docker.tls import TlsSettings, certificate


@pytest.mark.parametrize("cert, http_listen", [
    ("/s/web.pem\n    bind 0.0.0.0:1", None),
    ("/s/web.pem crt-ignore-err all", None),
    ("/s/web.pem", "127.0.0.1:81\n    bind 0.0.0.0:2"),
    ("/s/web.pem;x", None),
])
def test_haproxy_refuses_tls_values_that_would_inject(tmp_path, cert, http_listen):
    lb = HAProxy(tmp_path, "web", "production", "127.0.0.1:8443", tls=TlsSettings(Path(cert), http_listen))
    with pytest.raises(UnsafeConfigError):
        lb.render()


def test_a_certificate_outside_the_secrets_dir_or_without_a_key_is_refused(tmp_path):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "key.pem").write_text("-----BEGIN CERTIFICATE-----\nx\n-----BEGIN PRIVATE KEY-----\n")
    (tmp_path / "secrets" / "link.pem").symlink_to(tmp_path / "key.pem")
    (tmp_path / "secrets" / "cert-only.pem").write_text("-----BEGIN CERTIFICATE-----\nx\n")
    for name in ("../key.pem", "link.pem", "cert-only.pem", "/etc/ssl/private/web.pem"):
        with pytest.raises(SecretError):
            certificate(tmp_path / "secrets", name)


@pytest.mark.parametrize("tls", [
    {"certificate": "../../etc/ssl/private/web.pem"},
    {"certificate": "web.pem\n    bind 0.0.0.0:1"},
    {"certificate": "web.pem", "redirect": True, "http_listen": "127.0.0.1:81 accept-proxy"},
])
def test_config_validate_refuses_hostile_tls_naming_the_line(tmp_path, tls):
    path = tmp_path / "deploy.yml"
    path.write_text(yaml.safe_dump({"service": "web", "environments": {"production": {"tls": tls}}}))
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code == 1 and "line " in result.output and "tls" in result.output, result.output
