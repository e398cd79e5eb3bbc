"""The rules a contract migration breaks, named as squawk and strong_migrations name them, each
with the safe way to make the same change while the running release keeps working."""

from __future__ import annotations

from checks.migrations.operation import CANNOT_TELL

_NOT_NULL = ("add the column nullable (or with a database default), backfill it in batches, then add "
             "CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a separate migration, and only then SET NOT NULL")
_THREE_DEPLOYS = ("rename in three deploys: add the new {0} and write to both, backfill and switch reads to it, "
                  "then drop the old {0} once no release uses it")

SAFE_WAY: dict[str, str] = {
    "adding-not-nullable-field": _NOT_NULL,
    "adding-required-field": _NOT_NULL,
    "adding-field-without-db-default": (
        "a Python-side default (Django `default=`) is not kept in the database, so inserts from the running "
        "release fail: use `db_default=` (Django 5+), or add it null=True, backfill, then make it NOT NULL"),
    "adding-serial-primary-key-field": (
        "create a new table with the key and copy rows across in batches, or add a nullable column, fill it "
        "from a sequence in batches, build a unique index CONCURRENTLY and attach it as the key USING INDEX"),
    "adding-identity-column": (
        "an identity column fills every existing row under an exclusive lock: add a nullable column, fill "
        "it in batches, then attach the sequence"),
    "adding-field-with-default": ("a volatile default (gen_random_uuid(), clock_timestamp()) is computed for every "
                                  "row under an exclusive lock: add the column without it, set the default "
                                  "separately, and backfill existing rows in batches"),
    "adding-stored-generated-column": ("a stored generated column rewrites the table: add a plain nullable column, "
                                       "fill it with a trigger and a batched backfill"),
    "adding-json-column": "use jsonb: json has no equality operator, so SELECT DISTINCT on the table fails",
    "ban-drop-table": ("stop using the table first (deploy code that no longer reads or writes it), then drop "
                       "it in a later deploy; never `create_table force: true` over an existing table"),
    "ban-drop-column": ("deploy code that no longer reads or writes the column first (Rails: ignored_columns; "
                        "Django: SeparateDatabaseAndState), then drop it in a later deploy"),
    "renaming-column": _THREE_DEPLOYS.format("column"),
    "renaming-table": _THREE_DEPLOYS.format("table (or a view over the old name)"),
    "changing-column-type": ("add a new column of the new type, write to both, backfill in batches, switch "
                             "reads, then drop the old column"),
    "require-concurrent-index-creation": (
        "build the index CONCURRENTLY (Rails: algorithm: :concurrently with disable_ddl_transaction!; "
        "Django: AddIndexConcurrently; Alembic: postgresql_concurrently=True), outside a transaction"),
    "require-concurrent-index-deletion": "drop the index CONCURRENTLY, outside a transaction",
    "require-concurrent-reindex": "REINDEX ... CONCURRENTLY, outside a transaction",
    "require-concurrent-partition-detach": "DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+), outside a transaction",
    "require-concurrent-refresh": "REFRESH MATERIALIZED VIEW CONCURRENTLY (it needs a unique index on the view)",
    "constraint-missing-not-valid": ("add the constraint NOT VALID (Rails: validate: false), then VALIDATE it "
                                     "in a separate migration, which takes no write lock"),
    "adding-foreign-key-constraint": ("add the foreign key NOT VALID (Rails: validate: false), then validate "
                                      "it in a separate migration"),
    "disallowed-unique-constraint": ("build a unique index CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING "
                                     "INDEX"),
    "ban-drop-object": "stop using it first (deploy code that no longer needs it), then drop it in a later deploy",
    "dropping-column-default": ("keep the default until no running release inserts without the column; drop "
                                "it in a later deploy"),
    "backfill-in-schema-migration": ("backfill in a migration of its own, outside a transaction (Rails: "
                                     "disable_ddl_transaction!; Django: atomic = False), in batches"),
    "ban-truncate": "delete in batches in a data migration, after the code stops using the rows",
    "renaming-enum-value": "add the new value, move rows to it in batches, and stop writing the old one",
    "changing-table-structure": ("split it into steps the running release survives: expand first, switch "
                                 "the code, contract in a later deploy"),
    CANNOT_TELL: ("a person reads the migration: write the change so the classifier can see it (literal SQL, "
                  "operations in the migration file itself), or approve it after checking it by hand"),
}


def safe_way(rule: str) -> str:
    """The safe alternative for `rule`; every rule a classifier gives has one."""
    return SAFE_WAY.get(rule, SAFE_WAY["changing-table-structure"])
