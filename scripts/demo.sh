#!/usr/bin/env bash
# Sets everything up (ComfyUI 0.3.75 + this pack's dependencies, once) and runs the example workflow
# in a real headless ComfyUI: against the local Kling emulator unless Kling credentials are set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$here/scripts/setup_host.sh")"
cd "$here" && exec "$py" -m scripts.demo "$@"
