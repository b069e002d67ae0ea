"""Dependencies point one way: cli -> service, eval -> qa -> index -> runtimes -> common (checked on every import
statement, function-level ones included, so a lazy import cannot hide an edge)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cli", "common", "runtimes", "index", "qa", "service", "eval")
# What each package may import from the project, besides itself.
ALLOWED = {
    "common": set(),
    "runtimes": {"common"},
    "index": {"common", "runtimes"},
    "qa": {"common", "runtimes", "index"},
    "service": {"common", "runtimes", "index", "qa"},
    "eval": {"common", "runtimes", "index", "qa"},
    "cli": {"common", "runtimes", "index", "qa", "service", "eval"},
}
# `qa bench latency` and friends measure the service itself: the benchmarks may start and call it.
EXCEPTIONS = {("eval/bench", "service")}


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value.split(".")[0])
    return found & set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_package_imports_against_the_direction(package: str) -> None:
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for target in project_imports(path) - {package} - ALLOWED[package]:
            if not any(rel.startswith(prefix) and target == t for prefix, t in EXCEPTIONS):
                wrong.append(f"{rel} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_the_commands_are_mounted_from_the_top() -> None:
    """No package reaches for another's commands; `cli` mounts them all (the old `qa.cli` is gone)."""
    import cli

    names = {c.name for c in cli.app.registered_commands} | {g.name for g in cli.app.registered_groups}
    assert {"index", "ask", "serve", "eval", "calibrate", "train-reader", "bench"} <= names
    assert not (ROOT / "qa" / "cli.py").exists()
