"""Django migrations: the `operations` list of `class Migration`, operation by operation."""

from __future__ import annotations

import ast

from checks.migrations.data_code import data_only
from checks.migrations.operation import Operation, cannot_tell, contract, expand
from checks.migrations.py_ast import arg, call_name, const, does_nothing, has_kw, run_sql


def django_operations(tree: ast.Module, functions: dict[str, ast.FunctionDef]) -> list[Operation] | None:
    """The operations of `class Migration`, or None when the module has no such class."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Migration":
            for stmt in node.body:
                value = _operations_value(stmt)
                if value is not None:
                    calls = list(value.elts) if isinstance(value, (ast.List, ast.Tuple)) else [value]
                    reader = _Reader(functions)
                    return [op for call in calls for op in reader.read(call)]
            return []
    return None


def _operations_value(stmt: ast.stmt) -> ast.expr | None:
    """What `operations = [...]` (or `operations: list = [...]`) assigns; None for any other statement."""
    targets: list[ast.expr]
    if isinstance(stmt, ast.Assign):
        targets, value = stmt.targets, stmt.value
    elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
        targets, value = [stmt.target], stmt.value
    else:
        return None
    return value if any(isinstance(t, ast.Name) and t.id == "operations" for t in targets) else None


_EXPAND = {
    "CreateModel": "creates model {model}",
    "AddIndexConcurrently": "adds index to {model} concurrently",
    "RemoveIndexConcurrently": "removes index from {model} concurrently",
    "RemoveConstraint": "removes a constraint from {model}",
    "AlterModelOptions": "changes options of {model} (no schema change)",
    "AlterModelManagers": "changes managers of {model} (no schema change)",
    "CreateExtension": "creates a database extension",
    "HStoreExtension": "creates the hstore extension",
    "TrigramExtension": "creates the pg_trgm extension",
    "UnaccentExtension": "creates the unaccent extension",
    "CITextExtension": "creates the citext extension",
    "BtreeGinExtension": "creates the btree_gin extension",
    "BtreeGistExtension": "creates the btree_gist extension",
    "CryptoExtension": "creates the pgcrypto extension",
    "ValidateConstraint": "validates a constraint on {model}",
    "AddConstraintNotValid": "adds a constraint to {model} NOT VALID",
    "RenameIndex": "renames an index of {model} (no table or column changes)",
    "AddDefaultValue": "sets a database default on {model}.{field}",
    "AlterModelTableComment": "comments on the table of {model}",
}
# (rule, what): contract unless the model was created in the same migration.
_CONTRACT = {
    "DeleteModel": ("ban-drop-table", "deletes model {model}"),
    "RemoveField": ("ban-drop-column", "removes field {model}.{field}"),
    "RenameField": ("renaming-column", "renames field {model}.{field} to {new}"),
    "RenameModel": ("renaming-table", "renames model {model} to {new}"),
    "AlterField": ("changing-column-type", "alters field {model}.{field} (type or constraint change)"),
    "AddIndex": ("require-concurrent-index-creation",
                 "adds an index to {model} without concurrently, which blocks writes while it builds"),
    "RemoveIndex": ("require-concurrent-index-deletion",
                    "removes an index from {model} without concurrently, which locks the table"),
    "AlterUniqueTogether": ("disallowed-unique-constraint",
                            "changes unique_together of {model} (builds a blocking unique index)"),
    "AlterIndexTogether": ("require-concurrent-index-creation",
                           "changes index_together of {model} (builds a blocking index)"),
    "AlterModelTable": ("renaming-table", "renames the table of {model}"),
    "AlterOrderWithRespectTo": ("adding-not-nullable-field", "changes order_with_respect_to of {model}"),
}
# Operations whose first argument is the model itself (`name=`), not `model_name=`.
_MODEL_OPS = {"CreateModel", "DeleteModel", "AlterModelTable", "AlterModelOptions", "AlterModelManagers",
              "AlterUniqueTogether", "AlterIndexTogether", "AlterOrderWithRespectTo", "AlterModelTableComment"}
_NEW_MODEL_OK = {"AddIndex", "AddConstraint", "AlterUniqueTogether", "AlterIndexTogether", "AlterField",
                 "RemoveIndex", "AlterOrderWithRespectTo", "RenameField", "RemoveField"}


class _Reader:
    def __init__(self, functions: dict[str, ast.FunctionDef]) -> None:
        self.functions = functions
        self.created: set[str] = set()  # models created earlier in this migration, lower case

    def read(self, node: ast.AST) -> list[Operation]:
        if not isinstance(node, ast.Call):
            return [cannot_tell(f"operation `{ast.unparse(node)[:60]}` cannot be read")]
        op = call_name(node)
        model_keyword = "name" if op in _MODEL_OPS else "old_name" if op == "RenameModel" else "model_name"
        model = str(const(arg(node, 0, model_keyword), "?"))
        field = const(arg(node, 1, "old_name" if op == "RenameField" else "name"), "?")
        new = const(arg(node, 2 if op == "RenameField" else 1, "new_name"), "?")
        names = {"model": model, "field": field, "new": new}
        if op == "CreateModel":
            self.created.add(model.lower())
        if op == "AddField":
            return [self._add_field(node, model, f"{model}.{field}")]
        if op == "RunSQL":
            return [] if _is_noop(arg(node, 0, "sql")) else run_sql(arg(node, 0, "sql"), "RunSQL")
        if op == "RunPython":
            return [self._run_python(arg(node, 0, "code"))]
        if op == "SeparateDatabaseAndState":
            database = arg(node, 0, "database_operations")
            elements = database.elts if isinstance(database, (ast.List, ast.Tuple)) else []
            return [o for element in elements for o in self.read(element)]
        if op in ("AlterUniqueTogether", "AlterIndexTogether"):
            together = arg(node, 1, "unique_together" if op == "AlterUniqueTogether" else "index_together")
            if not const(together, {"?"}):
                which = "unique_together" if op == "AlterUniqueTogether" else "index_together"
                return [expand(f"removes {which} of {model} (builds nothing)")]
        if op in _NEW_MODEL_OK and model.lower() in self.created:
            return [expand(f"{op} on {model}, a model created in this migration (no rows, no readers yet)")]
        if op == "AddConstraint":
            return [self._add_constraint(node, model)]
        if op in ("AddConstraintNotValid", "ValidateConstraint"):
            return [self._not_valid(op, node, model)]
        if op == "AddDefaultValue":  # django-add-default-value: the default in the database too
            return [expand(_EXPAND[op].format(**names), subject=("set-default", f"{model}.{field}".lower()))]
        if op in _EXPAND:
            return [expand(_EXPAND[op].format(**names))]
        if (op.endswith("Extension") and not op.startswith("Remove")) or op == "CreateCollation":
            return [expand(f"{op} (django.contrib.postgres): no table or column changes")]
        if op in _CONTRACT:
            rule, what = _CONTRACT[op]
            return [contract(what.format(**names), rule)]
        return [cannot_tell(f"unknown operation {op}")]

    def _add_field(self, node: ast.Call, model: str, name: str) -> Operation:
        if model.lower() in self.created:
            return expand(f"adds field {name} to a model created in this migration")
        field = arg(node, 2, "field")
        if not isinstance(field, ast.Call):
            return cannot_tell(f"adds field {name} whose definition cannot be read")
        kind = call_name(field)
        if kind == "ManyToManyField":
            return expand(f"adds many-to-many field {name} (a new join table)")
        if const(arg(field, -1, "primary_key"), False) is True or kind in ("AutoField", "BigAutoField",
                                                                             "SmallAutoField"):
            return contract(f"adds primary key or auto field {name} to an existing table, which fills every row "
                            "under an exclusive lock", "adding-serial-primary-key-field")
        if const(arg(field, -1, "null"), False) is True:
            return expand(f"adds nullable field {name}")
        if has_kw(field, "db_default") and const(arg(field, -1, "db_default"), "expr") is not None:
            return expand(f"adds field {name} with a database default (db_default)")
        if has_kw(field, "db_default"):
            return contract(f"adds field {name} NOT NULL with db_default=None, which is no database default: "
                            "inserts from the running release fail", "adding-not-nullable-field")
        if has_kw(field, "default"):
            return contract(f"adds field {name} NOT NULL with only a Python default, which Django does not keep "
                            "in the database: inserts from the running release fail", "adding-field-without-db-default",
                            subject=("needs-default", name.lower()))
        return contract(f"adds field {name} NOT NULL without a default, which the running release does not write",
                        "adding-not-nullable-field")

    def _add_constraint(self, node: ast.Call, model: str) -> Operation:
        constraint = arg(node, 1, "constraint")
        kind = call_name(constraint) if isinstance(constraint, ast.Call) else "?"
        if kind == "UniqueConstraint":
            return contract(f"adds a unique constraint to {model}, which builds its index while blocking writes",
                            "disallowed-unique-constraint")
        return contract(f"adds a constraint to {model}, which checks every row under lock",
                        "constraint-missing-not-valid")

    def _not_valid(self, op: str, node: ast.Call, model: str) -> Operation:
        if op == "ValidateConstraint":
            name = str(const(arg(node, 1, "name"), "?"))
            return expand(f"validates constraint {name} on {model}", subject=("validated", name.lower()))
        constraint = arg(node, 1, "constraint")
        name = str(const(arg(constraint, -1, "name"), "?")) if isinstance(constraint, ast.Call) else "?"
        return expand(f"adds constraint {name} to {model} NOT VALID", subject=("not-valid", f"{name}|".lower()))

    def _run_python(self, code: ast.AST | None) -> Operation:
        if _is_noop(code):
            return expand("runs no code (RunPython.noop)")
        func: ast.FunctionDef | ast.Lambda | None = None
        if isinstance(code, ast.Lambda):
            func = code
        elif isinstance(code, ast.Name):
            func = self.functions.get(code.id)
        if func is None:
            return cannot_tell("runs Python code that is not in this file")
        if does_nothing(func):
            return expand("runs Python that does nothing")
        if isinstance(func, ast.FunctionDef) and data_only(func, self.functions):
            return expand(f"runs {func.name}, which changes rows only (data, no schema change)",
                                          subject=("data", ""))
        return cannot_tell("runs Python code that cannot be inspected")


def _is_noop(node: ast.AST | None) -> bool:
    if isinstance(node, ast.Attribute) and node.attr == "noop":
        return True
    return const(node, None) in ("", [], ())
