#!/usr/bin/env bash
# The whole test suite against a real ComfyUI + Chromium (browser tests in four setups: the pinned and
# the newest frontend x LiteGraph and Nodes 2.0), plus the Python matrix: installs them if needed (idempotent, ~1 s
# when already installed), then runs pytest with the host's Python. Extra arguments go to pytest,
# e.g. scripts/run_tests.sh -m "not browser" -x. Exit code 5 (no tests collected) is a failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$here/scripts/setup_host.sh" --browser)"
cd "$here"
# The library, emulator and CLI tests on the oldest and newest supported Python first (newest PyAV,
# NumPy, Pillow), then everything on the host's Python: pytest's summary stays the last line.
matrix_rc=0
bash "$here/scripts/run_python_matrix.sh" || matrix_rc=$?
rc=0
"$py" -m pytest tests -q -ra "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run_tests: pytest collected no tests; failing" >&2
fi
if [ "$rc" -eq 0 ] && [ "$matrix_rc" -ne 0 ]; then
  echo "run_tests: the Python matrix failed (exit $matrix_rc); see its lines above" >&2
  rc="$matrix_rc"
fi
exit "$rc"
