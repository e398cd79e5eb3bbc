"""Issue 15: each contract finding names the rule it breaks (squawk / strong_migrations names) and
the safe way to make the change, in `mainline migrations check`, in the migrations gate's check
run on GitHub and in the PR preview."""

from __future__ import annotations

from pathlib import Path

from checks.inputs import MigrationFinding
from checks.migrations import classify_migration, migrations_gate
from checks.migrations.rules import SAFE_WAY
from tests.handlers.test_github_preview import preview_runs, process_inbox, with_v1_live

BACKFILL_NOT_NULL = ("class RequirePlan < ActiveRecord::Migration[7.1]\n  def change\n"
                     "    change_column_null :users, :plan, false, \"free\"\n  end\nend\n")
PYTHON_DEFAULT = ("from django.db import migrations, models\n\nclass Migration(migrations.Migration):\n"
                  "    operations = [migrations.AddField('order', 'status', models.CharField(max_length=9, "
                  "default='new'))]\n")
ADD_INDEX = "CREATE INDEX orders_email_idx ON orders (email);\n"
RENAME = "ALTER TABLE users RENAME COLUMN name TO full_name;\n"


def test_cli_prints_the_rule_and_the_safe_way_under_each_contract_reason(mainline, tmp_path: Path):
    files = {"db/migrate/20260101000000_require_plan.rb": BACKFILL_NOT_NULL, "V3__index.sql": ADD_INDEX,
             "V4__rename.sql": RENAME}
    for name, text in files.items():
        (tmp_path / Path(name).name).write_text(text)
    result = mainline("migrations", "check", *(str(tmp_path / Path(n).name) for n in files))
    assert result.exit_code == 1
    out = result.output
    assert "  contract: sets users.plan NOT NULL, backfilling NULLs with free\n    rule: adding-not-nullable-field\n" \
           "    safe way: add the column nullable" in out
    assert "VALIDATE it in a separate migration, and only then SET NOT NULL" in out
    assert "    rule: require-concurrent-index-creation\n    safe way: build the index CONCURRENTLY" in out
    assert "    rule: renaming-column\n    safe way: rename in three deploys" in out


def test_every_rule_a_classifier_gives_has_a_safe_way():
    corpus = Path(__file__).parents[1] / "fixtures" / "migrations" / "corpus"
    rules = set()
    for path in corpus.rglob("*"):
        if path.suffix in (".py", ".rb", ".sql"):
            finding = classify_migration(str(path.relative_to(corpus)), path.read_text(), sql_linter=lambda _s: [])
            assert len(finding.rules) == sum(r.startswith("contract: ") for r in finding.reasons)
            rules |= {r.rule for r in finding.rules}
    assert rules <= set(SAFE_WAY), rules - set(SAFE_WAY)
    assert {"adding-not-nullable-field", "require-concurrent-index-creation", "renaming-column", "ban-drop-column",
            "changing-column-type", "adding-serial-primary-key-field", "ban-drop-table", "cannot-tell"} <= rules


def test_the_gate_names_each_broken_rule_with_its_safe_way_once():
    findings = [classify_migration("a/migrations/0002_status.py", PYTHON_DEFAULT),
                classify_migration("V3__index.sql", ADD_INDEX, sql_linter=lambda _s: []),
                classify_migration("V5__index.sql", ADD_INDEX.replace("orders_email", "x"), sql_linter=lambda _s: [])]
    held = migrations_gate(findings, "allow-expand", None, ["github:octocat"])
    assert held.reason.count("rule require-concurrent-index-creation: build the index CONCURRENTLY") == 1
    assert "rule adding-field-without-db-default: a Python-side default (Django `default=`)" in held.reason
    blocked = migrations_gate(findings, "block", None)
    assert "rule adding-field-without-db-default" in blocked.reason
    expand = MigrationFinding("V1__t.sql", "expand", ["expand: creates table t"])
    assert "rule" not in migrations_gate([expand], "approve", None).reason


def test_the_check_run_and_the_pr_preview_name_the_rule_and_the_safe_way(world):
    """The story on the GitHub stand-in: a PR carrying a NOT NULL backfill gets a preview naming
    the rule; merged, the deploy waits and `mainline/migrations` says the rule and the safe way."""
    with_v1_live(world)
    migration = "db/migrate/20260101000000_require_plan.rb"
    world.open_pr("hubot/require-plan", {migration: BACKFILL_NOT_NULL}, "Require a plan", author="hubot")
    head = world.head("hubot/require-plan")
    world.relay()
    process_inbox(world)
    [preview] = preview_runs(world, head)
    summary = preview.output["summary"]
    assert "rule `adding-not-nullable-field`: add the column nullable" in summary

    merged = world.sandbox.push_commit(world.repo, "master", {migration: BACKFILL_NOT_NULL}, "Require a plan")
    world.relay()
    process_inbox(world)
    world.wired.pipeline.drive(world.service, "production")
    runs = [r for r in world.sandbox.repo(world.repo).check_runs.values()
            if r.name == "mainline/migrations" and r.head_sha == merged]
    assert runs, "no mainline/migrations check run"
    text = runs[-1].output["title"] + runs[-1].output["summary"]
    assert "contract: sets users.plan NOT NULL" in text
    assert "rule adding-not-nullable-field" in text and "VALIDATE it in a separate migration" in text
