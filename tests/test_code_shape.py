"""The shape of the code a newcomer reads.

The data flows one way: a module of ``assistant`` imports only from its own stage or an earlier
one, in the order the README's Layout lists them, and ``ingest`` only from core and storage.
Read from the source (every ``import`` and ``from ... import``, inside functions too), so a
late import that goes back upstream is caught as well as a top-level one.

No function is over 60 lines and no class over 300, so each can be read in one sitting.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["core", "storage", "retrieval", "models", "checks", "chains", "present", "server", "cli"]
INGEST_MAY_USE = {"core", "storage"}
PACKAGES = ("assistant", "ingest", "eval")
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 300


def _stage(module: str) -> str | None:
    """The stage of a dotted module name: a subpackage of ``assistant``, "cli", "ingest", or None."""
    parts = module.split(".")
    if parts[0] == "ingest":
        return "ingest"
    if parts[0] == "assistant" and len(parts) > 1 and parts[1] in STAGES:
        return parts[1]
    return None


def _imports(path: Path) -> set[str]:
    """The project modules ``path`` imports (``from assistant import x`` counts as ``assistant.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "assistant" else [node.module]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if _stage(m)}


def _arrows() -> list[tuple[str, str, str, str]]:
    """(module, its stage, imported module, that module's stage) for every project import."""
    arrows = []
    for path in [*(ROOT / "assistant").rglob("*.py"), *(ROOT / "ingest").rglob("*.py")]:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        stage = _stage(module)
        if stage is None:  # assistant/__init__.py
            continue
        arrows += [(module, stage, imported, _stage(imported)) for imported in _imports(path)]
    return arrows


def test_no_module_imports_from_a_later_stage() -> None:
    arrows = _arrows()
    assert any(stage == "server" and to == "chains" for _, stage, _, to in arrows)  # the scan sees imports
    upstream = [
        f"{module} -> {imported}"
        for module, stage, imported, to in arrows
        if "ingest" not in (stage, to) and STAGES.index(to) > STAGES.index(stage)
    ]
    assert upstream == []


def test_ingest_uses_only_core_and_storage() -> None:
    arrows = _arrows()
    assert any(stage == "ingest" and to == "storage" for _, stage, _, to in arrows)
    wider = [f"{module} -> {imported}" for module, stage, imported, to in arrows if stage == "ingest" and to not in INGEST_MAY_USE | {"ingest"}]
    assert wider == []


def _sizes() -> list[tuple[str, str, int]]:
    """(kind, "path:line name", lines) of every function (nested ones too) and class of the packages."""
    found = []
    for path in (p for package in PACKAGES for p in (ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                found.append((kind, where, node.end_lineno - node.lineno + 1))
    return found


def test_no_function_is_over_60_lines_and_no_class_over_300() -> None:
    sizes = _sizes()
    assert max(lines for kind, _, lines in sizes if kind == "class") > 100  # the scan measures whole bodies
    too_long = [f"{where}: {lines} lines" for kind, where, lines in sizes
                if lines > (MAX_CLASS_LINES if kind == "class" else MAX_FUNCTION_LINES)]  # fmt: skip
    assert too_long == []
