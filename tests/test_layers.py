"""The package's layout: every module of ``fsth/`` sits in one stage, and imports run only downwards.

Read from the source (``ast``), not by importing: module-level and function-level imports alike count (a lazy import
that climbs is still a climb); imports under ``if TYPE_CHECKING:`` are annotations only, and do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fsth

PACKAGE = Path(fsth.__file__).parent

# Lowest first: a module may import its own stage and the ones before it, never one after it.
ORDER = [
    "fsth",  # the package itself: the version, the stage map
    "errors",
    "weights",  # the shipped weights (data files and their docs)
    "console",
    "config",
    "device",
    "files",
    "hub",
    "distributed",
    "video",
    "landmarks",
    "models",
    "losses",
    "gan",
    "checkpoint",
    "metrics",
    "dataset",
    "episodes",
    "rundir",
    "train",
    "fewshot",
    "animate",
    "evaluate",
    "cli",
    "__main__",
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The fsth modules ``path`` (module ``name``) imports, resolved to modules that exist."""

    def resolve(target: str) -> str | None:
        while target and target not in known:
            target = target.rpartition(".")[0]
        return target or None

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    stack = [ast.parse(path.read_text())]
    while stack:
        node = stack.pop()
        if _type_checking(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            if target.split(".")[0] == "fsth" and (module := resolve(target)) not in (None, name):
                found.add(module)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, name, known) for name, path in known.items()}


def stage(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "fsth"


def test_every_module_has_a_stage():
    missing = sorted({stage(m) for m in modules()} - set(ORDER))
    assert not missing, f"place these in ORDER (and in fsth/__init__.py's stage map): {missing}"


def test_imports_run_only_downwards():
    rank = {name: i for i, name in enumerate(ORDER)}
    climbs = [
        f"{importer} -> {imported}"
        for importer, targets in graph().items()
        for imported in targets
        if rank[stage(imported)] > rank[stage(importer)]
    ]
    assert not climbs, "imports from a lower stage to a higher one:\n" + "\n".join(sorted(climbs))


def test_no_import_cycle():
    """No module reaches itself through imports (inside a stage too: a package's modules import each other's
    modules, not the package that re-exports them)."""
    edges = graph()
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(path[path.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_stage_map_names_every_stage():
    """``fsth/__init__.py``'s docstring is the map a newcomer reads first: every stage with modules is on it."""
    stages = {stage(m) for m in modules()} - {"fsth", "__main__"}
    doc = fsth.__doc__ or ""
    unnamed = sorted(s for s in stages if f"``fsth.{s}``" not in doc)
    assert not unnamed, f"fsth/__init__.py's stage map does not name: {unnamed}"


def test_tests_import_public_names_only():
    """A test pins behaviour, not a private name: a refactor that keeps behaviour keeps the tests passing."""
    private = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fsth"):
                names = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
                private += [f"{path.name}: {node.module}.{name}" for name in names]
    assert not private, "tests import private names:\n" + "\n".join(private)
