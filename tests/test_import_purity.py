"""The library must import without ComfyUI or torch, so it can be used on its own."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_kling_api_imports_without_comfy_or_torch():
    code = (
        "import sys, importlib, pkgutil, kling_api\n"
        "for m in pkgutil.walk_packages(kling_api.__path__, 'kling_api.'):\n"
        "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('torch', 'comfy', 'comfy_api', 'comfy_execution', 'folder_paths', 'server', 'nodes'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
