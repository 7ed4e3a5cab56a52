"""The project's import graph, read from the source (ast): no cycles, no late imports of the project's
own modules, each wing of the library importing only the wings below it, and the library free of ComfyUI
and torch so that it can be used on its own."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The project's packages (and the root __init__.py, which is ComfyUI's entry point).
PACKAGES = ("kling_api", "nodes", "kling_devtools", "scripts", "benchmarks")
#: The library's wings, lowest first: a wing may import its own modules and those of the wings before it.
WINGS = ("errors", "rules", "media", "remote", "costs", "generation", "cli")
#: The emulator stands beside the client: it shares the rules (and the error types), never the client.
EMULATOR_MAY_IMPORT = {"errors", "rules", "emulator"}
FORBIDDEN_IN_LIBRARY = {"torch", "comfy", "comfy_api", "comfy_execution", "folder_paths", "server", "nodes"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or "__root__"


def project_files() -> dict[str, Path]:
    files = {"__root__": ROOT / "__init__.py"}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            files[module_name(path)] = path
    return files


def resolve(module: str, path: Path, node: ast.ImportFrom | ast.Import, known: set[str]) -> list[str]:
    """The project modules an import statement names (``from . import x`` may name a module or a name)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
            if module == "__root__":
                package = []
            base = package[:len(package) - node.level + 1] if node.level > 1 else package
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        targets = [prefix] + [f"{prefix}.{alias.name}" if prefix else alias.name for alias in node.names]
    found = []
    for target in targets:
        name = target
        while name and name not in known:  # ``import a.b.c`` imports a, a.b and a.b.c
            name = name.rpartition(".")[0]
        if name and name not in found:
            found.append(name)
    return found


def import_edges() -> tuple[dict[str, set[str]], list[str]]:
    """module -> project modules it imports (at any depth of the file), and the late imports found."""
    files = project_files()
    known = set(files)
    edges: dict[str, set[str]] = {name: set() for name in files}
    late: list[str] = []
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = [t for t in resolve(module, path, node, known) if t != module]
            if module != "__root__" and any(t == "__root__" for t in targets):
                targets.remove("__root__")
            edges[module].update(targets)
            if targets and id(node) not in top_level and not _guarded_at_top(tree, node):
                late.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {', '.join(targets)} inside a function")
    return edges, late


def _guarded_at_top(tree: ast.Module, node: ast.AST) -> bool:
    """An import in a module-level try/if (an optional dependency, a version check) is not late."""
    for statement in tree.body:
        if isinstance(statement, (ast.Try, ast.If)) and any(child is node for child in ast.walk(statement)):
            return not any(isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and
                           any(inner is node for inner in ast.walk(child)) for child in ast.walk(statement))
    return False


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle to break."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def wing_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "kling_api" and len(parts) > 1 else None


def test_the_graph_reader_finds_a_planted_cycle_and_late_import():
    """The checks below can fail: a cycle of two and an import inside a function are seen."""
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    tree = ast.parse("import os\ndef f():\n    from . import x\n")
    inner = tree.body[1].body[0]
    assert not _guarded_at_top(tree, inner) and id(inner) not in {id(n) for n in tree.body}
    assert resolve("kling_api.cli.commands", ROOT / "kling_api/cli/commands.py",
                   ast.parse("from ..rules.endpoints import ENDPOINTS").body[0],
                   {"kling_api", "kling_api.rules", "kling_api.rules.endpoints"}) == ["kling_api.rules.endpoints"]


def test_no_import_cycles_among_the_projects_modules():
    edges, _ = import_edges()
    assert cycles(edges) == []


def test_no_late_imports_of_the_projects_modules():
    _, late = import_edges()
    assert late == []


def test_each_wing_imports_only_the_wings_below_it():
    edges, _ = import_edges()
    wrong = []
    for module, targets in edges.items():
        wing = wing_of(module)
        if wing is None or wing == "__main__":
            continue  # the package's __init__ and ``python -m kling_api`` stand above every wing
        for target in targets:
            other = wing_of(target)
            if other is None:
                continue  # the package itself (kling_api/__init__ re-exports; wings never import it)
            if wing == "emulator":
                if other not in EMULATOR_MAY_IMPORT:
                    wrong.append(f"{module} -> {target} (the emulator shares the rules, not the client)")
            elif other == "emulator" or other not in WINGS or WINGS.index(other) > WINGS.index(wing):
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_kling_api_imports_without_comfy_or_torch():
    """Every library module imported in a fresh interpreter pulls in neither ComfyUI nor torch."""
    code = (
        "import sys, importlib, pkgutil, kling_api\n"
        "for m in pkgutil.walk_packages(kling_api.__path__, 'kling_api.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {sorted(FORBIDDEN_IN_LIBRARY)!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
