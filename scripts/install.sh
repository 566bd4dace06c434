#!/usr/bin/env bash
# Install rtag and everything it needs on a fresh Debian/Ubuntu machine, into a virtual
# environment in the repository (.venv: Debian's Python refuses pip outside one, PEP 668).
#   bash scripts/install.sh              runtime: system libraries, torch, rtag
#   bash scripts/install.sh --test       also the test tools and the programs the tests drive
#                                        (PulseAudio virtual microphone, fluidsynth and sound fonts)
#   bash scripts/install.sh --cpu-torch  torch from PyTorch's CPU wheel index (no CUDA libraries)
# Then run its programs: .venv/bin/rtag, .venv/bin/python -m pytest.
# Environment: RTAG_PYTHON the interpreter that creates the environment (default: the system's
# /usr/bin/python3 where it exists, else python3 on PATH); RTAG_VENV its folder (default .venv);
# RTAG_TORCH_INDEX_URL the index of --cpu-torch (default https://download.pytorch.org/whl/cpu).
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
cpu_torch=0
for argument in "$@"; do
  case "$argument" in
    --test) with_tests=1 ;;
    --cpu-torch) cpu_torch=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$argument' (expected --test, --cpu-torch)" >&2; exit 2 ;;
  esac
done

sudo_cmd=""
if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi

packages=(libportaudio2 libsndfile1 python3-venv)
if [ "$with_tests" = 1 ]; then
  packages+=(pulseaudio pulseaudio-utils libasound2-plugins fluidsynth fluid-soundfont-gm
             timgm6mb-soundfont freepats timidity csound-soundfont)
fi
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null

if [ -z "${RTAG_PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then RTAG_PYTHON=/usr/bin/python3; else RTAG_PYTHON=python3; fi
fi
venv="${RTAG_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  "$RTAG_PYTHON" -m venv "$venv"
fi
python="$venv/bin/python"
"$python" -m pip install -q --upgrade pip
# torch first and pinned: the version the project is built and tested with. From the default
# index it is the CPU wheel where one is at hand and otherwise the CUDA build (several GB of
# nvidia wheels); --cpu-torch takes PyTorch's CPU wheel index instead.
torch_index=()
if [ "$cpu_torch" = 1 ]; then
  torch_index=(--index-url "${RTAG_TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}")
fi
"$python" -m pip install -q "${torch_index[@]}" "torch==2.13.0"
if [ "$with_tests" = 1 ]; then
  "$python" -m pip install -q -e ".[test,train]"
else
  "$python" -m pip install -q -e .
fi
echo "rtag installed in $venv ($("$python" --version)): $("$venv/bin/rtag" --version)"
