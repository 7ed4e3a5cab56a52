"""kling_devtools is for tests, scripts and benchmarks only: the pack never imports it, and nothing in the
project reaches its modules (or any other) by editing sys.path; they are imported from the repository root."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What ComfyUI loads: the entry point, the node glue and the library under it.
RUNTIME = [ROOT / "__init__.py", *sorted((ROOT / "nodes").rglob("*.py")), *sorted((ROOT / "kling_api").rglob("*.py"))]
PROJECT = [ROOT / "__init__.py", *(path for folder in ("kling_api", "nodes", "kling_devtools", "scripts", "benchmarks",
                                                        "tests") for path in sorted((ROOT / folder).rglob("*.py")))]


def imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in ``tree``, relative ones with their dots, names included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found += [(node.lineno, base)] + [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def sys_path_edits(tree: ast.AST) -> list[int]:
    """Lines that change ``sys.path``: a call of one of its methods, or an assignment to it or an item of it."""
    def is_sys_path(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
                and node.value.id == "sys")

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and is_sys_path(node.func.value):
            if node.func.attr in ("insert", "append", "extend", "remove", "pop", "clear"):
                lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if is_sys_path(target) or (isinstance(target, ast.Subscript) and is_sys_path(target.value)):
                    lines.append(node.lineno)
    return sorted(lines)


def test_the_checks_see_a_devtools_import_and_a_sys_path_edit():
    tree = ast.parse("import sys\nfrom ..kling_devtools.host import ComfyHost\nsys.path.insert(0, 'x')\n"
                     "sys.path[:0] = ['y']\nsys.path += ['z']\n")
    assert any("kling_devtools" in name for _, name in imported_names(tree))
    assert sys_path_edits(tree) == [3, 4, 5]


def test_the_pack_never_imports_kling_devtools():
    wrong = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in RUNTIME
             for line, name in imported_names(ast.parse(path.read_text(encoding="utf-8")))
             if "kling_devtools" in name.split(".")]
    assert wrong == []


def test_the_library_loads_without_kling_devtools():
    """Every kling_api module imported in a fresh interpreter: kling_devtools is not among what comes along."""
    code = ("import sys, importlib, pkgutil, kling_api\n"
            "for m in pkgutil.walk_packages(kling_api.__path__, 'kling_api.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'kling_devtools'))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_nothing_in_the_project_edits_sys_path():
    wrong = [f"{path.relative_to(ROOT)}:{line}" for path in PROJECT
             for line in sys_path_edits(ast.parse(path.read_text(encoding="utf-8")))]
    assert wrong == [], "import from the repository root instead (pytest's pythonpath, python -m ...)"
