# Sourced by setup_host.sh and run_python_matrix.sh (both run with `set -o pipefail`).
# pip_quiet PYTHON ARGS...: that Python's pip, quiet, on stderr, without the local mirror's
# "Location '...' is ignored" noise; returns pip's exit status.
pip_quiet() {
  local py="$1"; shift
  local rc=0
  "$py" -m pip -q "$@" 2>&1 | { grep -vE "^WARNING: Location '.*' is ignored" || true; } >&2 || rc=$?
  return "$rc"
}
