"""Issue 15: a repository controls its migration files, so the classifier reads them as hostile.
A huge file, deeply nested code, an endless line, a helper-calling bomb or a flood of statements is
refused with a clear "contract: cannot tell" (never expand, never a crash, never a hang), through
`mainline migrations check` as a person runs it. The worst times are printed by
bench/migrations_corpus.py, not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.migrations.limits import MAX_BYTES

RAILS = "class M < ActiveRecord::Migration[7.1]\n  def change\n{body}\n  end\nend\n"
ALEMBIC_FAN = ("from alembic import op\n\ndef upgrade():\n" + "    f0()\n" * 40
               + "".join(f"def f{i}():\n" + f"    f{i + 1}()\n" * 40 for i in range(6))
               + "def f6():\n    op.add_column('t', sa.Column('c', sa.Text(), nullable=True))\n")
DJANGO_FAN = ("from django.db import migrations\n"
              + "".join(f"def f{i}(apps, editor):\n" + f"    f{i + 1}(apps, editor)\n" * 40 for i in range(6))
              + "def f6(apps, editor):\n    pass\n"
              + "class Migration(migrations.Migration):\n    operations = [migrations.RunPython(f0)]\n")

HOSTILE = {
    "huge.sql": ("SELECT 1;\n" * (MAX_BYTES // 5), "not read: the file is"),
    "V1__nested.sql": ("SELECT " + "(" * 5000 + "1" + ")" * 5000 + ";\n", "not read: brackets nest 5000 deep"),
    "0002_nested.py": ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "not read: brackets nest 100000 deep"),
    "0003_nested.py": ("x = " + "{" * 200 + "}" * 200 + "\n", "not read: brackets nest 200 deep"),
    "db/migrate/1_line.rb": (RAILS.format(body="    add_column " + ":a, " * 5000), "not read: a line is"),
    "db/migrate/2_commas.rb": (RAILS.format(body="    add_column :a,\n" * 8000), "too long to read"),
    "versions/abc_fan.py": (ALEMBIC_FAN, "cannot tell: upgrade makes more than 500 calls into helpers"),
    "app/migrations/0004_fan.py": (DJANGO_FAN, "cannot tell: runs Python code that cannot be inspected"),
    "V2__flood.sql": ("ALTER TABLE t ALTER COLUMN c SET DEFAULT 0;\n" * 1500,
                      "cannot tell: more than 1000 schema statements"),
    "V3__quote.sql": ("CREATE TABLE a (id int);\nSELECT '" + "x;" * 5000 + "\n", "string or name is never closed"),
    "V4__dollar.sql": ("DROP TABLE t; $$" + "; " * 5000, "body opened with $$ is never closed"),
    "V6__escape.sql": ("SELECT E'\\''; DROP TABLE users; --'\n", "drops table users"),
    "V7__hypertable.sql": ("SELECT create_hypertable('metrics', 'time');\n", "SELECT calls create_hypertable()"),
    "db/migrate/3_semicolon.rb": (RAILS.format(body="    add_column :u, :a, :text; remove_column :u, :email"),
                                  "removes column u.email"),
    "db/migrate/4_modifier.rb": (RAILS.format(body="    add_column :u, :a, :text if remove_column(:u, :b)"),
                                 "runs more than one call (if)"),
    "db/migrate/5_heredoc.rb": (RAILS.format(body="    execute <<~SQL\n      DROP TABLE #{victim}\n    SQL"),
                                "SQL that interpolates Ruby"),
    "versions/def_hidden.py": ("from alembic import op\ndef upgrade():\n    print(op.drop_column('u', 'b'))\n",
                               "drops column u.b"),
    "V5__unterminated_comment.sql": ("CREATE TABLE a (id int); /* " + "\n x" * 5000, "comment is never closed"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_migration_is_refused_as_contract_with_a_clear_reason(mainline, tmp_path: Path, name):
    text, phrase = HOSTILE[name]
    path = tmp_path / name.replace("/", "_")
    path.write_text(text)
    result = mainline("migrations", "check", str(path))
    assert result.exit_code == 1, result.output  # contract: a person decides
    assert f"{path}: contract" in result.output
    assert phrase in result.output, result.output[:2000]
    assert "Traceback" not in result.output
    assert "safe way:" in result.output


def test_a_file_far_over_the_limit_is_not_read_whole(mainline, tmp_path: Path):
    path = tmp_path / "V9__big.sql"
    with path.open("wb") as handle:
        handle.truncate(512 * 1024 * 1024)  # sparse: 512 MiB of zero bytes
    result = mainline("migrations", "check", str(path))
    assert result.exit_code == 1
    assert f"not read: the file is {MAX_BYTES + 1} bytes" in result.output  # read stops one byte over


def test_bytes_that_are_not_utf8_are_read_not_crashed_on(mainline, tmp_path: Path):
    path = tmp_path / "V10__latin1.sql"
    path.write_bytes("ALTER TABLE caf\u00e9 DROP COLUMN cr\u00e8me;\n".encode("latin-1"))
    result = mainline("migrations", "check", str(path))
    assert result.exit_code == 1 and "rule: ban-drop-column" in result.output


def test_a_huge_migration_in_a_diff_is_refused_without_reading_it(mainline, local_repo, monkeypatch):
    base = local_repo.commit("v1")
    padding = "# padding\n" * (MAX_BYTES // 5)
    local_repo.commit("big", {"db/migrate/3_big.rb": padding})
    monkeypatch.chdir(local_repo.work)
    result = mainline("migrations", "check", "--base", base)
    assert result.exit_code == 1
    assert "db/migrate/3_big.rb: contract" in result.output
    assert f"cannot tell: not read: the file is {len(padding)} bytes" in result.output


def test_the_deploy_gate_never_reads_a_huge_migration_whole(local_repo, tmp_path: Path):
    """A merge carrying a 64 MiB migration: the migrations gate sizes it in git and refuses it as
    contract without loading it (the CLI's check above reads files; the gate reads blobs)."""
    from types import SimpleNamespace

    from bot.config import parse_config
    from bot.gating import Gatekeeper
    from bot.infra.git import GitClient

    base = local_repo.commit("v1")
    (local_repo.work / "db").mkdir()
    with (local_repo.work / "db" / "V2__huge.sql").open("wb") as handle:
        handle.write(b"-- " + b"x" * (64 * 1024 * 1024) + b"\nDROP TABLE users;\n")
    tip = local_repo.commit("huge")
    config = parse_config((local_repo.work / ".github/deploy.yml").read_text()
                          + "migrations: {policy: approve, paths: ['db/*.sql']}\n")
    pipeline = SimpleNamespace(w=SimpleNamespace(git=GitClient(tmp_path / "git")))
    service = SimpleNamespace(clone_url=local_repo.clone_url)

    [finding] = Gatekeeper().migrations(pipeline, service, base, tip, config)

    assert finding.path == "db/V2__huge.sql" and finding.kind == "contract"
    assert f"not read: db/V2__huge.sql is {64 * 1024 * 1024 + 22} bytes, over the {MAX_BYTES} bytes read" \
        in " ".join(finding.reasons)
