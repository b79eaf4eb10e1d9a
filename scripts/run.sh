#!/usr/bin/env bash
# Set up localvideo and run the main job. With no display it starts a private one, so the
# whole path (record → analyze → serve) can be seen working on any machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh core
args=("$@")
if [ "$(uname)" = Linux ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "» no display here: starting a private virtual display (--virtual-display)"
  args+=(--virtual-display)
fi
exec .venv/bin/localvideo observe "${args[@]}"
