"""Issue 15: how often `mainline migrations check` agrees with a labelled corpus of migrations.

The corpus is a directory with a `manifest.json` mapping each file's path (relative to the
directory) to `{"expected": "expand" | "contract", "class": "<what it exercises>"}`. The default
is tests/fixtures/migrations/corpus: Django, Rails, Alembic and raw SQL migrations written for
this issue, each labelled as the peers' own test suites and documentation label such a change
(squawk, strong_migrations, django-migration-linter, django-pg-zero-downtime-migrations).

    .venv/bin/python bench/migrations_corpus.py [--corpus DIR] [--quiet]

Prints each disagreement, the agreement per framework, the slowest of a set of hostile inputs
(the most one pushed migration can cost the gate), then the last line
`migrations corpus: files=N agreement=X% destructive_called_safe=D safe_called_destructive=S`.
Exit status 1 when any destructive (contract) migration came out expand: that is the one
mistake the gate must never make.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checks.migrations import classify_migration

DEFAULT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "migrations" / "corpus"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT)
    parser.add_argument("--quiet", action="store_true", help="only the summary lines")
    args = parser.parse_args()
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    agree: Counter[str] = Counter()
    total: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    unsafe = costly = 0
    started = time.perf_counter()
    for rel, label in sorted(manifest.items()):
        framework = rel.split("/", 1)[0]
        text = (args.corpus / rel).read_text(encoding="utf-8", errors="replace")
        finding = classify_migration(rel, text, sql_linter=lambda _sql: [])
        total[framework] += 1
        if finding.kind == label["expected"]:
            agree[framework] += 1
            continue
        missed[label.get("class", "?")] += 1
        if label["expected"] == "contract":
            unsafe += 1
        else:
            costly += 1
        if not args.quiet:
            print(f"DISAGREE {rel}: expected {label['expected']}, got {finding.kind}: "
                  + "; ".join(finding.reasons)[:300])
    elapsed = time.perf_counter() - started
    for framework in sorted(total):
        print(f"  {framework:<8} {agree[framework]}/{total[framework]} "
              f"({100 * agree[framework] / total[framework]:.1f}%)")
    if missed:
        print("  missed classes: " + ", ".join(f"{c}={n}" for c, n in missed.most_common()))
    files = sum(total.values())
    print(f"  classified in {elapsed:.2f}s")
    worst, name = hostile_worst()
    print(f"  hostile inputs (files at the limits, floods, nesting, helper fan-out): slowest {name} in {worst:.2f}s")
    print(f"migrations corpus: files={files} agreement={100 * sum(agree.values()) / max(files, 1):.1f}% "
          f"destructive_called_safe={unsafe} safe_called_destructive={costly}")
    return 1 if unsafe else 0


def hostile_worst() -> tuple[float, str]:
    """The slowest of the hostile inputs tests/security/test_migrations_hostile.py feeds the CLI,
    classified here directly: the time a pushed migration can cost the gate at most."""
    from checks.migrations.limits import MAX_BYTES

    rails = "class M < ActiveRecord::Migration[7.1]\n  def change\n{}\n  end\nend\n"
    cases = {
        "huge.sql": "SELECT 1;\n" * (MAX_BYTES // 5),
        "V1__flood.sql": "ALTER TABLE t ALTER COLUMN c SET DEFAULT 0;\n" * 6000,
        "V2__inserts.sql": "INSERT INTO t (a) VALUES (1);\n" * 8000,
        "V3__nested.sql": "SELECT " + "(" * 5000 + "1" + ")" * 5000 + ";\n",
        "db/migrate/1_many.rb": rails.format("    add_column :users, :c, :string, default: 'x'\n" * 4000),
        "db/migrate/2_commas.rb": rails.format("    add_column :a,\n" * 8000),
        "app/migrations/0002_many.py": "from django.db import migrations, models\nclass Migration("
                                       "migrations.Migration):\n    operations = [\n"
                                       + "        migrations.AddField('u', 'c', models.IntegerField(null=True)),\n"
                                       * 3500 + "    ]\n",
        "versions/a_fan.py": "from alembic import op\ndef upgrade():\n" + "    f0()\n" * 40 + "".join(
            f"def f{i}():\n" + f"    f{i + 1}()\n" * 40 for i in range(6)) + "def f6():\n    op.drop_table('t')\n",
    }
    worst = (0.0, "")
    for path, text in cases.items():
        started = time.perf_counter()
        classify_migration(path, text, sql_linter=lambda _sql: [])
        worst = max(worst, (time.perf_counter() - started, path))
    return worst


if __name__ == "__main__":
    sys.exit(main())
