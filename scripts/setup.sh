#!/usr/bin/env bash
# Set up localvideo on this machine: system packages (when root on Debian/Ubuntu), a virtual
# environment in .venv, and the package itself. Safe to run again: it skips what is there.
#   scripts/setup.sh            core (observe: record, analyze, serve)
#   scripts/setup.sh test       + test tools, Chromium, and the synth extra (CPU torch)
#   scripts/setup.sh synth      + the synth extra
set -euo pipefail
cd "$(dirname "$0")/.."
want="${1:-core}"

debs=(xvfb xdotool xterm openbox x11-utils tesseract-ocr tesseract-ocr-eng fonts-dejavu-core)
# test: a headless sway (run as an unprivileged user: sway refuses root) with foot windows,
# grim for wlr-screencopy, Xwayland and xhost (root may connect), strace (no-network test).
# PipeWire, WirePlumber and GStreamer's PipeWire source carry the portal path's frames.
[ "$want" = test ] && debs+=(chromium ffmpeg sway foot wtype grim xwayland x11-xserver-utils
                             dbus-daemon strace pipewire wireplumber gstreamer1.0-pipewire
                             gstreamer1.0-tools gstreamer1.0-plugins-base
                             trayer)   # an XEmbed tray host for the tray icon's test
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "» installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "» missing system packages: ${missing[*]}"
    echo "  install them with: sudo apt-get install ${missing[*]}" >&2
  fi
fi

# sway will not start as root: the Wayland tests run it as this user (tests/capture/lvsway.py).
if [ "$want" = test ] && [ "$(id -u)" = 0 ] && ! id lvtest >/dev/null 2>&1; then
  echo "» creating the unprivileged test user lvtest"
  useradd --create-home --shell /usr/sbin/nologin lvtest
fi

py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "» creating .venv"
  "$py" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
extras=""
case "$want" in
  test) extras="[test,synth,hosted,ray,encrypt,tray]" ;;
  synth) extras="[synth]" ;;
esac
if [ -n "$extras" ] && ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # A CPU build keeps the test path small; the extra's range accepts it.
  .venv/bin/python -m pip install -q "torch==2.13.0" 2>/dev/null \
    || .venv/bin/python -m pip install -q torch
fi
echo "» installing localvideo${extras}"
.venv/bin/python -m pip install -q -e ".${extras}"
