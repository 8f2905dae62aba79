"""The shape of the code a newcomer reads.

The data flows one way: a module of ``assistant`` imports only from its own stage or an earlier
one, in the order the README's Layout lists them, and ``ingest`` only from core and storage.
Read from the source (every ``import`` and ``from ... import``, inside functions too), so a
late import that goes back upstream is caught as well as a top-level one.

No function is over 60 lines and no class over 300, so each can be read in one sitting.

The modules a process loads form a graph at most 10 levels tall, with no cycle: the imports that
run (at the top of a module or inside a function), not those under ``if TYPE_CHECKING:``, which
only name a type that is handed in (a chain is given its retriever, the routes their service).
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
MAX_IMPORT_LEVELS = 10


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


def _runtime_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports when it runs (``from assistant.core import prompts``
    is ``assistant.core.prompts``); imports under ``if TYPE_CHECKING:`` are left out."""
    paths = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in (ROOT / "assistant").rglob("*.py")}  # fmt: skip

    def resolve(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        guarded = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}  # fmt: skip
        names: list[str] = []
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names += [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names += [a.name for a in node.names]
        found = {resolve(n) for n in names if n.startswith("assistant.")}
        graph[module] = {m for m in found if m and m != module and not module.startswith(f"{m}.")}
    return graph


def _tallest_chain(graph: dict[str, set[str]]) -> list[str]:
    """The longest import chain of ``graph``, top module first; ValueError naming a cycle if there is one."""
    chains: dict[str, list[str]] = {}

    def chain(module: str, path: tuple[str, ...]) -> list[str]:
        if module in path:
            raise ValueError("import cycle: " + " -> ".join((*path[path.index(module):], module)))
        if module not in chains:
            below = [chain(m, (*path, module)) for m in sorted(graph.get(module, ()))]
            chains[module] = [module, *max(below, key=len, default=[])]
        return chains[module]

    return max((chain(m, ()) for m in sorted(graph)), key=len)


def test_the_tallest_chain_is_measured_and_a_cycle_is_named() -> None:
    assert _tallest_chain({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == ["a", "b", "c"]
    try:
        _tallest_chain({"a": {"b"}, "b": {"a"}})
    except ValueError as exc:
        assert "a -> b -> a" in str(exc)
    else:
        raise AssertionError("a cycle went unnoticed")


def test_the_import_graph_has_no_cycle_and_is_at_most_10_levels_tall() -> None:
    graph = _runtime_graph()
    assert "assistant.chains.qa" in graph["assistant.server.service"]  # the scan sees imports
    assert "assistant.core.prompts" in graph["assistant.chains.stance"]  # ``from assistant.core import prompts``
    tallest = _tallest_chain(graph)
    assert len(tallest) <= MAX_IMPORT_LEVELS, " -> ".join(tallest)
