"""The node glue imported inside ComfyUI's own Python (no server running): input checks of nodes/."""
import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.host

SCRIPT = r"""
import importlib.util, sys
sys.argv = ['main.py', '--cpu']  # comfy.cli_args reads the command line: no GPU here
import utils.install_util  # as main.py does, before comfy puts its own utils.py within reach
import comfy.options
comfy.options.enable_args_parsing()
import torch
spec = importlib.util.spec_from_file_location('kling_pack', PACK + '/__init__.py', submodule_search_locations=[PACK])
pack = importlib.util.module_from_spec(spec); sys.modules['kling_pack'] = pack; spec.loader.exec_module(pack)
from kling_pack.nodes.media import batch_images
from kling_pack.kling_api.errors import KlingValidationError
results = []
for shape in [(0, 320, 480, 3), (320, 480, 3), (2, 320, 480, 3)]:
    try:
        results.append(len(batch_images(torch.zeros(shape), 'image')))
    except KlingValidationError as exc:
        results.append(f'{exc.field}: {exc}')
print(repr(results))
"""


def test_empty_image_batch_is_refused_naming_the_field(comfy_install):
    code = f"PACK = {str(ROOT)!r}\n" + SCRIPT
    done = subprocess.run([comfy_install.python, "-c", code], capture_output=True, text=True, timeout=180,
                          cwd=str(comfy_install.comfyui_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    results = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert results[1:] == [1, 2]
    assert results[0].startswith("image: ") and "non-empty IMAGE batch" in results[0]
