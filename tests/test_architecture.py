"""The layering of docs/architecture.md, held by reading every module's imports (AST,
nothing is imported): cli -> batch/config/usage -> core, and testing stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "llmcli"

# layer -> the llmcli layers it must never import
FORBIDDEN = {
    "core": {"cli", "batch", "config", "usage", "testing"},
    "config": {"cli", "batch", "usage", "testing"},
    "batch": {"cli", "testing"},
    "usage": {"cli", "batch", "testing"},
    "cli": {"testing"},
    "testing": {"cli", "batch", "config", "usage", "core"},
}


def imported_layers(path: Path, source: str | None = None) -> set[str]:
    """The top-level llmcli subpackages a module imports, relative or absolute."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    text = path.read_text(encoding="utf-8") if source is None else source
    found: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        names: list[tuple[str, ...]] = []
        if isinstance(node, ast.Import):
            names = [tuple(alias.name.split(".")) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = tuple((node.module or "").split(".")) if node.module else ()
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = anchor + base
            names = [base + (alias.name,) for alias in node.names] if not node.module \
                else [base]
        for parts in names:
            if len(parts) >= 2 and parts[0] == "llmcli":
                found.add(parts[1])
    return found


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_downwards(layer: str) -> None:
    assert modules(layer), f"no modules found for {layer}: the test would hold vacuously"
    wrong = {str(path.relative_to(PACKAGE)): sorted(imported_layers(path) & FORBIDDEN[layer])
             for path in modules(layer)}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_the_checker_sees_a_back_edge() -> None:
    """The AST reading itself: relative and absolute upward imports are all seen."""
    source = "from ..cli import app\nimport llmcli.batch.engine\nfrom .. import usage\n"
    assert imported_layers(PACKAGE / "core" / "probe.py", source) == {"cli", "batch", "usage"}
