#!/usr/bin/env bash
# The whole test suite against a real ComfyUI + Chromium: installs them if needed (idempotent, ~1 s
# when already installed), then runs pytest with the host's Python. Extra arguments go to pytest,
# e.g. scripts/run_tests.sh -m "not browser" -x. Exit code 5 (no tests collected) is a failure.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$here/scripts/setup_host.sh" --browser)"
cd "$here"
rc=0
"$py" -m pytest tests -q -ra "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run_tests: pytest collected no tests; failing" >&2
fi
exit "$rc"
