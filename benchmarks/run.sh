#!/usr/bin/env bash
# The benchmark in the host's venv (installed on first use by scripts/setup_host.sh, which prints
# its Python): bash benchmarks/run.sh [--runs 3] [--only decode,encode,wait,many,in_host] [--quick]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$here/scripts/setup_host.sh")"
cd "$here"
exec "$py" -m benchmarks "$@"
