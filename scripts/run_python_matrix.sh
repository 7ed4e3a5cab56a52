#!/usr/bin/env bash
# The tests that need no ComfyUI host, browser or torch (library, emulator, CLI) on the oldest and the
# newest supported Python found here, each in its own venv with the NEWEST av, numpy, pillow, requests,
# pyjwt and pytest that PyPI offers for that Python (so a user's fresh `pip install` is what is tested),
# plus tqdm: not required, but every ComfyUI has it and the batch command draws its bar with it when present
# (tests/test_batch.py covers both the bar and the plain lines without it).
#
# Venvs live under $KLING_HOST_ROOT/python-matrix/<version> (default ~/.cache/kling-comfy-host). A stamp
# per venv records the interpreter and the package list; the venv is re-created when either changes and
# upgraded to the newest releases when its stamp is older than KLING_MATRIX_REFRESH_HOURS (default 24),
# so a re-run within a day costs no pip call. A Python that is not found FAILS the run (not skipped).
# Overrides: KLING_MATRIX_PYTHONS ("3.10 3.13"), KLING_MATRIX_PYTHON_<major>_<minor> (an interpreter path).
# Extra arguments go to pytest. Prints one "python-matrix:" summary line per Python, then the total time.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
root="${KLING_HOST_ROOT:-$HOME/.cache/kling-comfy-host}/python-matrix"
versions="${KLING_MATRIX_PYTHONS:-3.10 3.13}"
refresh_hours="${KLING_MATRIX_REFRESH_HOURS:-24}"
packages="av numpy pillow requests pyjwt pytest tqdm"
# Everything that needs ComfyUI, Chromium or torch carries one of these markers (tests/conftest.py adds
# host/browser from the fixtures a test uses; torch is set by hand).
selection="not host and not browser and not torch"

log() { echo "[python-matrix] $*" >&2; }

find_python() {  # $1 = "3.10": an override, then pyenv's newest patch release, then pythonX.Y on PATH
  local override="KLING_MATRIX_PYTHON_${1//./_}"
  if [ -n "${!override:-}" ]; then echo "${!override}"; return; fi
  local candidate
  candidate="$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$1".*/bin/python 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then echo "$candidate"; return; fi
  command -v "python$1" || true
}

# shellcheck source=scripts/pip_quiet.sh
source "$here/scripts/pip_quiet.sh"

prepare_venv() {  # $1 = version, $2 = base interpreter; prints the venv's python
  local venv="$root/$1" base="$2"
  local key stamp="$root/$1/.stamp"
  key="$("$base" -c 'import sys; print(sys.version.split()[0], sys.executable)') $packages"
  if [ ! -f "$stamp" ] || [ "$(head -n 1 "$stamp")" != "$key" ] || [ ! -x "$venv/bin/python" ]; then
    log "creating $venv from $base"
    rm -rf "$venv"
    mkdir -p "$root"
    "$base" -m venv "$venv"
    pip_quiet "$venv/bin/python" install --upgrade pip
    pip_quiet "$venv/bin/python" install --upgrade $packages
    echo "$key" > "$stamp"
  elif [ -n "$(find "$stamp" -mmin "+$((refresh_hours * 60))")" ]; then
    log "upgrading $venv to the newest releases"
    pip_quiet "$venv/bin/python" install --upgrade $packages
    echo "$key" > "$stamp"
  fi
  echo "$venv/bin/python"
}

started=$SECONDS
status=0
summaries=()
for version in $versions; do
  base="$(find_python "$version")"
  if [ -z "$base" ]; then
    log "no Python $version found (pyenv, PATH or KLING_MATRIX_PYTHON_${version//./_}); failing"
    summaries+=("python-matrix: Python $version: NOT FOUND")
    status=1
    continue
  fi
  py="$(prepare_venv "$version" "$base")"
  versions_line="$("$py" -c 'import sys, av, numpy, PIL, requests, jwt, pytest
print(f"Python {sys.version.split()[0]}: av {av.__version__}, numpy {numpy.__version__}, "
      f"Pillow {PIL.__version__}, requests {requests.__version__}, pyjwt {jwt.__version__}, pytest {pytest.__version__}")')"
  log "$versions_line"
  rc=0
  (cd "$here" && "$py" -m pytest tests -q -ra -m "$selection" "$@") || rc=$?
  if [ "$rc" -eq 5 ]; then log "pytest collected no tests under $versions_line; failing"; fi
  if [ "$rc" -ne 0 ]; then status=1; fi
  summaries+=("python-matrix: $versions_line: pytest exit $rc")
done
printf '%s\n' "${summaries[@]}" >&2
log "total $((SECONDS - started)) s"
exit "$status"
