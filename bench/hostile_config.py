"""How fast, and in how much memory, Mainline refuses hostile repository input.

The security tests (tests/security/test_config_attacks.py, test_fuzz_config.py) assert *what* is
refused and why, and count the glob matcher's work; the wall time and memory of each refusal are
measured here, on this machine, and printed:

- `mainline config validate` on each hostile `.github/deploy.yml` (a YAML alias bomb, 5,000
  nested brackets, 40 nested mappings, a 280 KB file, a 5,000-digit number, an injected `listen`,
  20 backtracking globs);
- branch and migration globs (`**a` twelve times, `*a` forty times) against long names.

    .venv/bin/python bench/hostile_config.py [--repeat 5]

Each line: the case, the slowest of --repeat runs, and the peak Python memory it allocated. Last
line: `hostile: cases=N slowest=Xs peak=YMB`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main
from bot.globs import glob_match

HEAD = """\
service: webapp
branch: master
environments:
  production:
    target: docker
    auto_deploy: true
    listen: "127.0.0.1:18080"
"""
ALIAS_BOMB = "service: webapp\n" + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join('*' + chr(97 + i) for _ in range(9))}]\n" for i in range(8))
CONFIGS = {
    "alias bomb": ALIAS_BOMB,
    "5,000 nested brackets": "service: webapp\nx: " + "[" * 5000 + "]" * 5000 + "\n",
    "40 nested mappings": "service: webapp\n" + "".join(" " * i + f"k{i}:\n" for i in range(40)),
    "280 KB of comments": "service: webapp\n" + "".join(f"# padding {i:06d} " + "x" * 80 + "\n" for i in range(3000)),
    "5,000-digit number": "service: webapp\nx: 1" + "1" * 5000 + "\n",
    "listen injection": HEAD.replace('"127.0.0.1:18080"', '"127.0.0.1:1\\nlisten evil\\n  bind :2375"'),
    "20 backtracking globs": HEAD + "migrations: {paths: [" + ", ".join(["'" + "**a" * 12 + "'"] * 20) + "]}\n",
}


def measure(run: Callable[[], object], repeat: int) -> tuple[float, int]:
    slowest, peak = 0.0, 0
    for _ in range(repeat):
        tracemalloc.start()
        started = time.perf_counter()
        run()
        slowest = max(slowest, time.perf_counter() - started)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return slowest, peak


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    runner = CliRunner()
    cases: list[tuple[str, Callable[[], object]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in CONFIGS.items():
            path = Path(tmp) / f"{len(cases)}.yml"
            path.write_text(text)
            verdict = "refused" if runner.invoke(main, ["config", "validate", str(path)]).exit_code else "accepted"
            cases.append((f"config validate ({verdict}): {name}",
                          lambda p=path: runner.invoke(main, ["config", "validate", str(p)])))
        cases.append(("migration glob **a x12 vs 120-char names",
                      lambda: [glob_match("a" * n + "b.txt", "**a" * 12, paths=True) for n in range(32, 120, 8)]))
        cases.append(("branch glob *a x40 vs a 5,000-char branch", lambda: glob_match("a" * 5000, "*a" * 40 + "c")))
        worst_time, worst_peak = 0.0, 0
        for name, run in cases:
            took, peak = measure(run, args.repeat)
            worst_time, worst_peak = max(worst_time, took), max(worst_peak, peak)
            print(f"{name:55s} {took * 1000:8.1f} ms  peak {peak / 1e6:6.2f} MB")
    print(f"hostile: cases={len(cases)} slowest={worst_time:.3f}s peak={worst_peak / 1e6:.1f}MB")
    return 0


if __name__ == "__main__":
    sys.exit(main_())
