"""Issue 15: every class the issue lists, on migrations written for it (tests/fixtures/migrations/
corpus, labelled in its manifest.json as the peers' own test suites label such changes).

Destructive changes are never classed expand; known-safe ones are not classed contract; what
cannot be seen is "contract: cannot tell", never expand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checks.inputs import MigrationFinding
from checks.migrations import classify_migration

CORPUS = Path(__file__).parents[1] / "fixtures" / "migrations" / "corpus"
MANIFEST: dict[str, dict] = json.loads((CORPUS / "manifest.json").read_text())


def classify(relative: str) -> MigrationFinding:
    return classify_migration(relative, (CORPUS / relative).read_text(), sql_linter=lambda _sql: [])


def test_the_corpus_has_every_framework_and_every_class_of_the_issue():
    assert len(MANIFEST) >= 120
    assert {rel.split("/")[0] for rel in MANIFEST} == {"django", "rails", "alembic", "sql"}
    classes = {label["class"] for label in MANIFEST.values()}
    assert {
        "python-default-not-null", "db-default", "serial-primary-key", "create-table-force",
        "change-column-null-backfill", "alembic-helper", "cannot-tell", "constraint-on-new-table", "sql-parser-gap",
        "concurrent-index", "alter-unique-together-empty", "known-safe-add-default-value",
        "known-safe-run-python-noop", "known-safe-validate-constraint", "known-safe-enum-value",
        "known-safe-batched-backfill", "known-safe-default-reset", "unknown-operation",
    } <= classes
    on_disk = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.suffix in (".py", ".rb", ".sql")}
    assert on_disk == set(MANIFEST)


@pytest.mark.parametrize("relative", sorted(MANIFEST))
def test_each_corpus_migration_gets_its_label(relative):
    finding = classify(relative)
    assert finding.kind == MANIFEST[relative]["expected"], finding.reasons


# The issue's classes one by one: the reason and the rule a person reads.
DESTRUCTIVE = [
    ("django/shop/migrations/0002_add_status_python_default.py", "adding-field-without-db-default",
     "adds field order.status NOT NULL with only a Python default"),
    ("django/shop/migrations/0005_add_level_db_default_none.py", "adding-not-nullable-field",
     "adds field customer.level NOT NULL with db_default=None, which is no database default"),
    ("sql/V19__bigserial_pk_existing.sql", "adding-serial-primary-key-field",
     "adds primary key column events.id to an existing table"),
    ("rails/db/migrate/20260101000300_add_id_primary_key.rb", "adding-serial-primary-key-field",
     "adds auto-numbered key column events.id (primary_key)"),
    ("rails/db/migrate/20260101000100_recreate_users_force.rb", "ban-drop-table",
     "creates table users with force: true, which drops the existing table"),
    ("rails/db/migrate/20260101000500_users_plan_not_null_backfill.rb", "adding-not-nullable-field",
     "sets users.plan NOT NULL, backfilling NULLs with free"),
    ("alembic/versions/fd568c89c964_rename_tenant_columns_via_helper.py", "renaming-column",
     "renames column <table>.org_id to tenant_id"),
    ("alembic/versions/2a7594e5c16c_helper_from_other_module.py", "cannot-tell",
     "cannot tell: upgrade calls migrate_all_tables(), which is not defined in this file"),
]


@pytest.mark.parametrize("relative, rule, phrase", DESTRUCTIVE)
def test_destructive_changes_are_contract_with_their_rule(relative, rule, phrase):
    finding = classify(relative)
    assert finding.kind == "contract"
    [reason] = [r for r in finding.reasons if phrase in r]
    assert finding.rule_for(reason).rule == rule


def test_an_alembic_helper_is_followed_into_every_table_it_renames():
    finding = classify("alembic/versions/fd568c89c964_rename_tenant_columns_via_helper.py")
    # The loop's table is a variable: the reason says so, and each call is still contract.
    assert finding.reasons == ["contract: renames column <table>.org_id to tenant_id"]
    nested = classify("alembic/versions/70cdd4db0b75_nested_helpers_drop.py")
    assert nested.reasons == ["contract: drops column <table>.legacy_flag"]


def test_alembic_downgrade_and_rails_down_are_never_read():
    alembic = classify("alembic/versions/3bf37d48ec73_add_nullable_phone.py")
    assert alembic.reasons == ["expand: adds column users.phone (nullable)"]  # downgrade drops a table
    rails = classify("rails/db/migrate/20260101004800_up_down_add_column.rb")
    assert rails.reasons == ["expand: adds column users.avatar_url"]


@pytest.mark.parametrize("source", [
    "def upgrade():\n    getattr(op, 'drop_' + 'table')('users')\n",
    "def upgrade():\n    exec(open('steps.py').read())\n",
    "def upgrade():\n    helpers.run(op)\n",
    "def upgrade():\n    loop()\n\ndef loop():\n    loop()\n",
    "def upgrade():\n    op.alter_column('users', 'name', **CHANGES)\n",
    "def upgrade():\n    op.some_future_operation('users')\n",
    "def upgrade():\n    sa.Table('users', sa.MetaData()).drop(op.get_bind())\n",
    "def upgrade():\n    op.add_column('users', build_column('plan'))\n",
    "def upgrade():\n    print(rename_everything())\n",
])
def test_an_alembic_operation_that_cannot_be_seen_is_cannot_tell_never_expand(source):
    finding = classify_migration("migrations/versions/abc_x.py", "from alembic import op\n" + source)
    assert finding.kind == "contract"
    assert finding.reasons[0].startswith("contract: cannot tell: "), finding.reasons
    assert finding.rules[0].rule == "cannot-tell"


SAFE = [
    ("sql/V18__identity_on_new_table.sql", "adds column ledger.id to the new table ledger"),
    ("sql/V14__rename_index.sql", "renames index orders_created_idx (no table or column changes)"),
    ("sql/V15__alter_sequence.sql", "creates or alters sequence orders_id_seq"),
    ("sql/V16__reindex_concurrently.sql", "rebuilds orders_created_at_idx concurrently"),
    ("sql/V21__function_and_trigger.sql", "creates or replaces function touch_updated_at"),
    ("sql/V12__select_one_comment.sql", "no schema change found"),
    ("sql/V13__start_transaction.sql", "creates index promo_code_idx on the new table promo"),
    ("sql/V11__create_audit_trailing_comment.sql", "creates table audit_log"),
    ("rails/db/migrate/20260101000900_add_account_ref_concurrently.rb",
     "adds reference orders.account with algorithm: :concurrently"),
    ("django/shop/migrations/0014_unique_together_cleared.py", "removes unique_together of booking (builds nothing)"),
    ("django/shop/migrations/0021_add_default_value.py", "sets a database default on order.currency"),
    ("django/shop/migrations/0023_run_python_pass.py", "runs Python that does nothing"),
    ("django/shop/migrations/0025_backfill_in_batches.py", "runs backfill_currency, which changes rows only"),
    ("sql/V22__validate_check.sql", "validates constraint orders_total_positive on orders"),
    ("sql/V24__enum_add_value.sql", "adds a value to enum order_state"),
    ("rails/db/migrate/20260101003100_backfill_plan_in_batches.rb", "(data only, no schema change)"),
    ("sql/V25__default_dropped_and_set_back.sql", "drops the default of orders.currency, and sets one back"),
    ("rails/db/migrate/20260101003500_reset_plan_default.rb", "and sets one back in the same migration"),
    ("django/shop/migrations/0012_create_model_then_unique.py", "a model created in this migration"),
]


@pytest.mark.parametrize("relative, phrase", SAFE)
def test_known_safe_changes_are_expand(relative, phrase):
    finding = classify(relative)
    assert finding.kind == "expand", finding.reasons
    assert any(phrase in r for r in finding.reasons), finding.reasons
    assert finding.rules == []


def test_unknown_stays_contract():
    finding = classify("django/shop/migrations/0042_unknown_custom_operation.py")
    assert finding.reasons == ["contract: cannot tell: unknown operation SwapTables"]
    sql = classify_migration("V9__x.sql", "ALTER TABLE t ALTER COLUMN c SET COMPRESSION lz4;", sql_linter=lambda _s: [])
    assert sql.kind == "contract" and sql.reasons[0].startswith("contract: cannot tell")


# What the peers' suites taught beyond the issue's list (strong_migrations, django-migration-linter, squawk).
PEERS = [
    ("sql/V53__volatile_default_existing.sql", "contract", "adding-field-with-default"),
    ("rails/db/migrate/20260101005600_add_seen_at_callable_default.rb", "contract", "adding-field-with-default"),
    ("alembic/versions/b61a46575a36_volatile_server_default.py", "contract", "adding-field-with-default"),
    ("sql/V54__stored_generated_existing.sql", "contract", "adding-stored-generated-column"),
    ("rails/db/migrate/20260101005700_add_settings_json.rb", "contract", "adding-json-column"),
    ("sql/V55__fk_column_existing.sql", "contract", "adding-foreign-key-constraint"),
    ("sql/V64__not_valid_then_validate_in_begin.sql", "contract", "constraint-missing-not-valid"),
    ("sql/V56__not_valid_then_validate_same_file.sql", "expand", ""),  # squawk: no transaction assumed
    ("rails/db/migrate/20260101006000_fk_validate_same_transaction.rb", "contract", "constraint-missing-not-valid"),
    ("django/shop/migrations/0054_not_valid_then_validate.py", "expand", ""),
    ("alembic/versions/2f568943d640_schema_upgrades_validate.py", "expand", ""),
    ("alembic/versions/7de3c2d53e17_schema_upgrades_check_not_valid.py", "expand", ""),
    ("alembic/versions/a5200d94ccf3_schema_upgrades_check_validated.py", "contract", "constraint-missing-not-valid"),
    ("alembic/versions/13f2a6509e5c_schema_upgrades_drop.py", "contract", "ban-drop-column"),
    ("sql/V58__validate_with_hidden_drop.sql", "contract", "cannot-tell"),
    ("sql/V61__escape_string_hides_drop.sql", "contract", "ban-drop-table"),
    ("rails/db/migrate/20260101006700_semicolon_hides_remove.rb", "contract", "ban-drop-column"),
    ("alembic/versions/f6ca02633cab_hidden_in_print.py", "contract", "ban-drop-column"),
    ("rails/db/migrate/20260101006200_not_null_via_check_constraint.rb", "expand", ""),
    ("alembic/versions/28407b682497_not_null_via_check_autocommit.py", "expand", ""),
    ("rails/db/migrate/20260101006100_check_validate_no_transaction.rb", "expand", ""),
    ("django/shop/migrations/0053_default_then_add_default_value.py", "expand", ""),
    ("rails/db/migrate/20260101006600_old_style_self_up.rb", "expand", ""),
    ("rails/db/migrate/20260101007600_add_column_and_backfill_together.rb", "contract", "backfill-in-schema-migration"),
    ("django/shop/migrations/0057_add_field_and_backfill_atomic.py", "contract", "backfill-in-schema-migration"),
    ("django/shop/migrations/0058_add_field_and_backfill_not_atomic.py", "expand", ""),
    ("rails/db/migrate/20260101007700_add_column_reset_information.rb", "expand", ""),
    ("sql/V59__swap_primary_key_using_index.sql", "expand", ""),
]


@pytest.mark.parametrize("relative, kind, rule", PEERS)
def test_what_the_peers_suites_label(relative, kind, rule):
    finding = classify(relative)
    assert finding.kind == kind, finding.reasons
    assert (finding.rules[0].rule if finding.rules else "") == rule, finding.reasons


def test_not_null_through_a_validated_check_is_expand_unless_one_transaction_holds_the_lock():
    rails = classify("rails/db/migrate/20260101006200_not_null_via_check_constraint.rb")  # disable_ddl_transaction!
    assert "expand: sets users.email NOT NULL after validating a CHECK (... IS NOT NULL) constraint" in rails.reasons
    sql = classify("sql/V65__not_null_via_check_one_file.sql")  # squawk's documented way, in one file
    assert sql.kind == "expand"
    inside = classify("rails/db/migrate/20260101006300_not_null_via_check_same_transaction.rb")
    assert inside.kind == "contract"
    assert inside.reasons[0].startswith("contract: validates a check constraint on users in the same "
                                        "transaction that added it NOT VALID"), inside.reasons


def test_squawk_adds_only_the_rules_the_classifier_does_not_decide_itself():
    from checks.migrations.squawk import parse_squawk_output

    output = ("m.sql:3:1: warning: constraint-missing-not-valid By default new constraints require a scan\n"
              "m.sql:5:1: warning: ban-truncate-cascade Using TRUNCATE's CASCADE drops rows in other tables\n"
              "m.sql:7:1: warning: prefer-bigint-over-int Use 64-bit integers\n")
    ops = parse_squawk_output(output)
    assert [(op.kind, op.rule, op.what) for op in ops] == [
        ("contract", "ban-truncate-cascade", "squawk: ban-truncate-cascade"),
        ("expand", "", "squawk: prefer-bigint-over-int"),
    ]
