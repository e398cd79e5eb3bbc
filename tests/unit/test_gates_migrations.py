"""Migrations: detection in a diff, expand/contract classification with reasons, the gate, and
whether a release may be rolled back automatically."""

from pathlib import Path

import pytest

from bot.domain import GateStatus
from checks.inputs import Approval, MigrationFinding
from checks.migrations import (
    CONTRACT,
    Operation,
    classify_migration,
    detect_migrations,
    migrations_gate,
    rollback_allowed,
    sql_operations,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "migrations"


def classify(relative: str, **kwargs) -> MigrationFinding:
    return classify_migration(relative, (FIXTURES / relative).read_text(), **kwargs)


# --- detection ---------------------------------------------------------------------------------


def test_detects_each_framework_and_skips_the_rest():
    changed = [
        "shop/migrations/0002_add_price.py",
        "shop/migrations/__init__.py",
        "migrations/env.py",
        "migrations/versions/1a2b_add_orders.py",
        "db/migrate/20260301120000_add_nickname.rb",
        "db/schema.rb",
        "sql/V3__drop_legacy.sql",
        "sql/R__views.sql",
        "src/app.py",
        "README.md",
    ]
    assert detect_migrations(changed) == [
        "shop/migrations/0002_add_price.py",
        "migrations/versions/1a2b_add_orders.py",
        "db/migrate/20260301120000_add_nickname.rb",
        "sql/V3__drop_legacy.sql",
    ]


def test_configured_globs_add_migrations():
    changed = ["schema/changes/2026/001_users.sql", "schema/readme.md", "db/patches/p1.sql"]
    assert detect_migrations(changed, ["schema/**/*.sql", "db/patches/*.sql"]) == [
        "schema/changes/2026/001_users.sql",
        "db/patches/p1.sql",
    ]


def test_configured_globs_keep_star_inside_one_directory():
    changed = ["db/patches/p1.sql", "db/patches/old/p0.sql", "db/patches/p[1].sql"]
    assert detect_migrations(changed, ["db/patches/*.sql"]) == ["db/patches/p1.sql", "db/patches/p[1].sql"]
    assert detect_migrations(changed, ["db/**/p?.sql"]) == ["db/patches/p1.sql", "db/patches/old/p0.sql"]
    assert detect_migrations(changed, ["db/patches/p[0-1].sql"]) == ["db/patches/p1.sql"]


def test_a_backtracking_glob_is_matched_without_backtracking():
    """`**a` twelve times against a 32-character path once took 5 s, and six times as long per 4
    more characters. The matcher's work is counted (tests/security/test_fuzz_config.py) and timed
    (bench/hostile_config.py); here, the answer."""
    paths = ["a" * n + "b" for n in range(32, 200, 8)]
    assert detect_migrations(paths, ["**a" * 12, "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*ac"]) == []


def test_every_fixture_is_detected():
    paths = [str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*") if p.suffix in (".py", ".rb", ".sql")]
    corpus = [p for p in paths if p.startswith("corpus/")]
    assert len(detect_migrations([p for p in paths if p not in corpus])) == 8  # all but Django's __init__.py
    assert detect_migrations(corpus) == corpus  # the labelled corpus sits where each framework keeps them


# --- classification of the fixtures --------------------------------------------------------------

EXPAND_FIXTURES = {
    "django/accounts/migrations/0002_expand_profile.py": [
        "expand: creates model Profile",
        "expand: adds nullable field user.nickname",
        "expand: adds field user.is_staff with a database default (db_default)",
        "expand: adds index to user concurrently",
        "expand: creates index user_email_lower on accounts_user concurrently",
    ],
    "alembic/versions/1a2b3c4d5e6f_expand_orders.py": [
        "expand: creates table orders",
        "expand: creates index ix_orders_total on the new table orders",
        "expand: adds column users.phone (nullable)",
        "expand: adds column users.active with a server default",
        "expand: creates index ix_users_phone on users concurrently",
        "expand: changes rows of users (data only, no schema change)",
    ],
    "rails/db/migrate/20260301120000_add_nickname_to_users.rb": [
        "expand: creates table invoices",
        "expand: adds column users.nickname",
        "expand: adds column users.plan",
        "expand: adds an index on users with algorithm: :concurrently",
        "expand: adds an index on invoices, a new table",
    ],
    "flyway/sql/V1__create_users.sql": [
        "expand: creates table accounts",
        "expand: creates index accounts_name_idx on the new table accounts",
        "expand: adds column users.account_id",
        "expand: adds column users.created_at with a default",
        "expand: creates index users_account_idx on users concurrently",
    ],
}

CONTRACT_FIXTURES = {
    "django/accounts/migrations/0003_contract_user.py": [
        "contract: removes field user.legacy_code",
        "contract: renames field user.nickname to display_name",
        "contract: adds field user.tenant NOT NULL without a default, which the running release does not write",
        "contract: changes the type of accounts_user.age to BIGINT",
    ],
    "alembic/versions/2b3c4d5e6f7a_contract_users.py": [
        "contract: drops column users.fax",
        "contract: changes the type of users.age",
        "contract: renames table order_items to line_items",
        "contract: adds column users.tenant_id NOT NULL without a server default, "
        "which the running release does not write",
        "contract: drops column users.pager",
    ],
    "rails/db/migrate/20260302120000_remove_email_from_users.rb": [
        "contract: removes column users.email",
        "contract: renames column users.name to full_name",
        "contract: changes column users.age",
        "contract: sets users.nickname NOT NULL",
        "contract: drops table sessions",
        "contract: sets users.plan NOT NULL",
    ],
    "flyway/sql/V2__drop_legacy.sql": [
        "contract: drops column users.legacy_id",
        "contract: renames column users.login to username",
        "contract: changes the type of users.score to DECIMAL(10, 2)",
        "contract: adds column users.region NOT NULL without a default, which the running release does not write",
        "contract: creates index users_region_idx on users without CONCURRENTLY, "
        "which blocks writes to users while it builds",
        "contract: drops table audit_old",
    ],
}


@pytest.mark.parametrize("path", sorted(EXPAND_FIXTURES))
def test_expand_fixture_is_expand_with_a_reason_per_operation(path):
    finding = classify(path)
    assert finding.kind == "expand"
    assert finding.reasons == EXPAND_FIXTURES[path]


@pytest.mark.parametrize("path", sorted(CONTRACT_FIXTURES))
def test_contract_fixture_is_contract_with_a_reason_per_operation(path):
    finding = classify(path)
    assert finding.kind == "contract"
    assert finding.reasons == CONTRACT_FIXTURES[path]


def test_alembic_downgrade_is_not_what_a_deploy_applies():
    reasons = " ".join(classify("alembic/versions/1a2b3c4d5e6f_expand_orders.py").reasons)
    assert "drop" not in reasons


def test_rails_down_method_is_ignored():
    reasons = classify("rails/db/migrate/20260302120000_remove_email_from_users.rb").reasons
    assert not any("email" in r and "adds" in r for r in reasons)


# --- classification edge cases -------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql, kind, phrase",
    [
        ("ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT 'x'", "expand", "adds column t.c with a default"),
        ("ALTER TABLE t ALTER COLUMN c SET NOT NULL", "contract", "sets t.c NOT NULL"),
        ("ALTER TABLE t ALTER COLUMN c DROP NOT NULL", "expand", "lets t.c be NULL"),
        ("ALTER TABLE t RENAME TO u", "contract", "renames table t to u"),
        ("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES b(id) NOT VALID", "expand", "NOT VALID"),
        ("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES b(id)", "contract", "without NOT VALID"),
        ("DROP INDEX CONCURRENTLY ix", "expand", "drops index ix concurrently"),
        ("DROP INDEX ix", "contract", "without CONCURRENTLY"),
        ("TRUNCATE t", "contract", "truncates t"),
        ("CREATE EXTENSION IF NOT EXISTS pgcrypto", "expand", "creates extension pgcrypto"),
        ("CREATE TABLEX oops (", "contract", "cannot tell"),
        ("BEGIN; CREATE TABLE a (id int); COMMIT;", "expand", "creates table a"),
    ],
)
def test_sql_statements(sql, kind, phrase):
    ops = sql_operations(sql)
    assert any(op.kind == kind and phrase in op.what for op in ops), ops
    assert (kind == CONTRACT) == any(op.kind == CONTRACT for op in ops)


def test_django_run_python_is_contract_when_it_cannot_be_inspected():
    text = (
        "from django.db import migrations\n"
        "def forwards(apps, schema_editor):\n    schema_editor.execute(build_sql())\n"
        "class Migration(migrations.Migration):\n"
        "    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]\n"
    )
    finding = classify_migration("shop/migrations/0004_backfill.py", text)
    assert finding.kind == "contract"
    assert finding.reasons == ["contract: cannot tell: runs Python code that cannot be inspected"]
    assert finding.rules[0].rule == "cannot-tell"


def test_django_separate_database_and_state_reads_the_database_side():
    text = (
        "from django.db import migrations, models\n"
        "class Migration(migrations.Migration):\n"
        "    operations = [migrations.SeparateDatabaseAndState(\n"
        "        state_operations=[migrations.RemoveField('user', 'old')],\n"
        "        database_operations=[migrations.RunSQL('ALTER TABLE shop_user ADD COLUMN note text')])]\n"
    )
    finding = classify_migration("shop/migrations/0005_state.py", text)
    assert finding.kind == "expand" and finding.reasons == ["expand: adds column shop_user.note"]


def test_empty_migration_is_expand_with_no_schema_change():
    text = "from django.db import migrations\nclass Migration(migrations.Migration):\n    operations = []\n"
    assert classify_migration("a/migrations/0006_empty.py", text).reasons == ["expand: no schema change found"]


def test_broken_python_is_contract_with_the_syntax_error():
    finding = classify_migration("a/migrations/0007_broken.py", "class Migration(:\n")
    assert finding.kind == "contract" and "line 1" in finding.reasons[0]


def test_sql_linter_findings_are_added_for_sql_files():
    def linter(sql):
        return [Operation(CONTRACT, "squawk: ban-drop-column")]

    finding = classify_migration("sql/V9__x.sql", "ALTER TABLE t ADD COLUMN c text", sql_linter=linter)
    assert finding.kind == "contract"
    assert finding.reasons == ["contract: squawk: ban-drop-column", "expand: adds column t.c"]


def test_without_squawk_on_path_sql_is_classified_by_sqlglot_alone():
    # squawk is not installed on this machine; nothing is added, nothing fails.
    finding = classify_migration("sql/V9__x.sql", "ALTER TABLE t ADD COLUMN c text")
    assert finding.reasons == ["expand: adds column t.c"]


# --- the gate and rollback ---------------------------------------------------------------------

EXPAND = MigrationFinding("db/migrate/1_add.rb", "expand", ["expand: adds column users.nickname"])
CONTRACTING = MigrationFinding("db/migrate/2_drop.rb", "contract", ["contract: removes column users.email"])


def test_no_migrations_pass_under_every_policy():
    for policy in ("block", "approve", "allow-expand"):
        assert migrations_gate([], policy, None).status is GateStatus.PASS


def test_policy_block_blocks_any_migration():
    result = migrations_gate([EXPAND], "block", Approval("granted", by="alice"))
    assert result.status is GateStatus.BLOCK
    assert "policy: block" in result.reason and "db/migrate/1_add.rb" in result.reason


def test_policy_approve_waits_for_a_deployer_then_passes():
    waiting = migrations_gate([EXPAND], "approve", None, ["github:octocat"])
    assert waiting.status is GateStatus.WAIT
    assert waiting.reason == (
        "waiting for approval of migration db/migrate/1_add.rb (expand: adds column users.nickname) "
        "from one of github:octocat"
    )
    assert migrations_gate([EXPAND], "approve", Approval("granted", by="github:octocat")).status is GateStatus.PASS


def test_rejected_approval_blocks_with_who_and_why():
    result = migrations_gate([CONTRACTING], "approve", Approval("rejected", by="alice", reason="not during sale"))
    assert result.status is GateStatus.BLOCK
    assert result.reason.endswith("rejected by alice: not during sale")


def test_allow_expand_passes_expand_and_holds_contract_for_approval():
    assert migrations_gate([EXPAND], "allow-expand", None).status is GateStatus.PASS
    held = migrations_gate([EXPAND, CONTRACTING], "allow-expand", None, ["alice"])
    assert held.status is GateStatus.WAIT
    assert "contract migration db/migrate/2_drop.rb (contract: removes column users.email)" in held.reason
    assert "1_add" not in held.reason
    granted = migrations_gate([EXPAND, CONTRACTING], "allow-expand", Approval("granted", by="alice"))
    assert granted.status is GateStatus.PASS


def test_rollback_past_a_contract_migration_needs_a_person():
    allowed, reason = rollback_allowed([EXPAND])
    assert allowed
    allowed, reason = rollback_allowed([EXPAND, CONTRACTING])
    assert not allowed
    assert "db/migrate/2_drop.rb (contract: removes column users.email)" in reason and "a person must decide" in reason


@pytest.mark.parametrize(
    "body, kind, phrase",
    [
        ("change_table :users do |t|\n      t.remove :fax\n    end", "contract", "removes users.fax"),
        ("change_table :users do |t|\n      t.string :pager\n    end", "expand", "adds column users.pager"),
        ('execute "CREATE INDEX CONCURRENTLY ix ON users (a)"', "expand", "creates index ix on users concurrently"),
        ("add_column :users, :tier, :integer, null: false", "contract", "null: false without a default"),
        ("add_reference :orders, :user, index: false", "expand", "reference orders.user without an index"),
        ("add_foreign_key :orders, :users, validate: false", "expand", "adds a foreign key orders -> users"),
        ("change_column_null :users, :nick, true", "expand", "lets users.nick be NULL"),
        ("frobnicate :users", "contract", "frobnicate is not recognised"),
    ],
)
def test_rails_dsl(body, kind, phrase):
    text = f"class M < ActiveRecord::Migration[7.1]\n  def change\n    {body}\n  end\nend\n"
    finding = classify_migration("db/migrate/20260101000000_m.rb", text)
    assert finding.kind == kind and any(phrase in r for r in finding.reasons), finding.reasons


def test_alembic_batch_and_compatible_alter_column():
    text = (
        "import sqlalchemy as sa\nfrom alembic import op\n"
        "def upgrade():\n"
        "    op.alter_column('users', 'bio', nullable=True, existing_type=sa.Text())\n"
        "    with op.batch_alter_table('users') as batch_op:\n"
        "        batch_op.drop_column('fax')\n"
        "        batch_op.create_index('ix_users_bio', ['bio'])\n"
    )
    finding = classify_migration("migrations/versions/3c_m.py", text)
    assert finding.reasons == [
        "contract: drops column users.fax",
        "contract: creates index ix_users_bio on users without postgresql_concurrently=True, "
        "which blocks writes while it builds",
        "expand: alters users.bio compatibly (nullable)",
    ]
