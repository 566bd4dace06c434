#!/usr/bin/env bash
# Install rtag and everything it needs on a fresh Debian/Ubuntu machine.
#   bash scripts/install.sh          runtime: system libraries, torch, rtag
#   bash scripts/install.sh --test   also the test tools and the programs the tests drive
#                                    (PulseAudio virtual microphone, fluidsynth and sound fonts)
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

packages=(libportaudio2 libsndfile1)
if [ "$with_tests" = 1 ]; then
  packages+=(pulseaudio pulseaudio-utils libasound2-plugins fluidsynth fluid-soundfont-gm
             timgm6mb-soundfont freepats timidity)
fi
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

python3 -m pip install -q --upgrade pip
# torch first and pinned: this CPU wheel is what the project is built and tested with; an
# unpinned torch would pull several GB of CUDA libraries.
python3 -m pip install -q "torch==2.13.0"
if [ "$with_tests" = 1 ]; then
  python3 -m pip install -q -e ".[test,train]"
else
  python3 -m pip install -q -e .
fi
echo "rtag installed: $(python3 -m rtag.cli --version)"
