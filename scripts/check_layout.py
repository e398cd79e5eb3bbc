"""The layout rules of the redesign (#10), checked by `make lint`:

- no module in bot/, handlers/, checks/ or sandbox/ is over 400 lines, and no class over 250;
- no import cycle between those modules, counting function-level imports as if they were at the
  top: a lazy import may keep start-up light (the CLI, `mainline demo` and its stand-ins) but
  never hide a cycle.

Prints each breach and exits 1 when there is one.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "checks", "sandbox")
MAX_MODULE, MAX_CLASS = 400, 250


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def imported(module: str, node: ast.AST, is_package: bool, known: set[str]) -> list[str]:
    """Our own modules an import statement loads."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom):
        target = resolve(module, node, is_package)
        names = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
    return [n for n in names if n.split(".")[0] in PACKAGES]


def main() -> int:
    files = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))
    known = {module_name(p) for p in files}
    graph: dict[str, set[str]] = {}
    breaches: list[str] = []
    for path in files:
        text = path.read_text()
        rel = path.relative_to(ROOT)
        if (lines := text.count("\n")) > MAX_MODULE:
            breaches.append(f"{rel}: {lines} lines (at most {MAX_MODULE})")
        tree = ast.parse(text)
        module, is_package = module_name(path), path.name == "__init__.py"
        edges = graph.setdefault(module, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and (size := (node.end_lineno or 0) - node.lineno + 1) > MAX_CLASS:
                breaches.append(f"{rel}:{node.lineno}: class {node.name} is {size} lines (at most {MAX_CLASS})")
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            for sub in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
                edges.update(m for m in imported(module, sub, is_package, known) if m in known)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for sub in ast.walk(node):
                    edges.update(m for m in imported(module, sub, is_package, known) if m in known)
    breaches += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    for line in breaches:
        print(line)
    return 1 if breaches else 0


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


if __name__ == "__main__":
    sys.exit(main())
