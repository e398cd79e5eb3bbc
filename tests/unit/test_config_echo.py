"""What `mainline config validate` echoes of a refused value: escaped once (a newline reads `\\n`,
not `\\\\n`), and a value it cuts short ends in `…`, so nobody reads a cut value as the whole."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from bot.cli import main

HEAD = """\
service: webapp
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
"""


def validate(tmp_path: Path, text: str) -> str:
    path = tmp_path / "deploy.yml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["config", "validate", str(path)])
    assert result.exit_code != 0
    return result.output


def test_a_control_character_is_escaped_once(tmp_path):
    output = validate(tmp_path, HEAD + '    listen: "127.0.0.1:1\\nlisten evil"\n')
    assert "line 7" in output
    assert "got '127.0.0.1:1\\nlisten evil'" in output
    assert "\\\\n" not in output


def test_a_secret_reference_cut_short_says_so(tmp_path):
    output = validate(tmp_path, HEAD + '    secrets: {PASSWD: "file:../../etc/passwd"}\n')
    assert "line 7" in output and "environments.production.secrets.PASSWD" in output
    assert "got 'file:../../etc/passw…'" in output
