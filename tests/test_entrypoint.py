"""The pack's entry point: V3 only, nothing registered on a ComfyUI without the V3 API."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_old_host_logs_one_clear_line_and_registers_nothing(tmp_path):
    code = (
        "import importlib.util, logging, sys, types\n"
        "logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')\n"
        "sys.modules['folder_paths'] = types.ModuleType('folder_paths')  # an old ComfyUI: no comfy_api\n"
        f"spec = importlib.util.spec_from_file_location('pack', r'{ROOT / '__init__.py'}',"
        f" submodule_search_locations=[r'{ROOT}'])\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules['pack'] = mod; spec.loader.exec_module(mod)\n"
        "print(sorted(n for n in ('comfy_entrypoint', 'NODE_CLASS_MAPPINGS', 'WEB_DIRECTORY') if hasattr(mod, n)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("ERROR")]
    assert len(errors) == 1 and "ComfyUI 0.3.48 or newer" in errors[0]


def test_entrypoint_module_never_defines_node_class_mappings():
    source = (ROOT / "__init__.py").read_text()
    assert "comfy_entrypoint" in source and "NODE_CLASS_MAPPINGS =" not in source
