#!/usr/bin/env bash
# Train the default model's recipe from a training pack (`python -m offline pack`) on a machine
# that holds this repository and torch but not the corpus, every stage bounded in time, and write
# the bundle and each stage's metrics to OUT_DIR.
#   bash scripts/train_from_pack.sh PACK_DIR OUT_DIR [--set KEY=VALUE ...]
# The --set overrides apply to every stage (e.g. --set train.max_clips_per_class=null).
# Environment: WHEELS a folder of wheels to install first into /tmp/rtag-site (a machine without a
# package index); CONFIG the experiment (default configs/train/corpus_2s.yaml); AUDIO_S, SPEC_S,
# COMB_S each stage's time limit in seconds (defaults 150, 150, 30: with preparing, the
# head's feature crops and the export, sized for a 10-minute command); HEAD_CROPS the cached
# feature crops of the comb head (default 2); WORKERS data-loading processes (default: cores - 2);
# PRECISION (default bf16); WORK the folder of the cache and the run (default /tmp/rtag-pack-run).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -lt 2 ]; then sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; fi
pack=$(realpath "$1"); out=$(realpath -m "$2"); shift 2
[ -f "$pack/manifest.csv" ] || { echo "train_from_pack.sh: $pack/manifest.csv: no such file (make it with python -m offline pack)" >&2; exit 2; }
mkdir -p "$out"

if [ -n "${WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/rtag-site "$WHEELS"/*.whl
  export PYTHONPATH="/tmp/rtag-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$(pwd)${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
config=${CONFIG:-configs/train/corpus_2s.yaml}
work=${WORK:-/tmp/rtag-pack-run}
workers=${WORKERS:-$(( $(nproc) > 3 ? $(nproc) - 2 : 1 ))}
common=(--set "data.root=$pack/manifest.csv" --set "data.cache_dir=$work/cache" --set "run_dir=$work/run"
        --set "train.precision=${PRECISION:-bf16}" --set "train.num_workers=$workers" --set train.progress=false "$@")

started=$SECONDS
python3 -m offline prepare "$config" "${common[@]}" --workers "$workers"
echo "prepared in $(( SECONDS - started )) s"
python3 -m offline train "$config" "${common[@]}" --set 'train.stages=[audio]' --set "train.stage_time_limit_s=${AUDIO_S:-150}"
python3 -m offline train "$config" "${common[@]}" --set 'train.stages=[spec]' --set "train.stage_time_limit_s=${SPEC_S:-150}"
echo "cnn-audio and cnn-spec trained in $(( SECONDS - started )) s"
head=(--set 'train.stages=[comb]' --set "train.head_feature_crops=${HEAD_CROPS:-2}" --set train.head_dropout=0.3
      --set train.head_input_dropout=0.2 --set train.head_feature_noise=0.3 --set train.weight_decay=0.1
      --set train.label_smoothing=0.1 --set train.lr_schedule=cosine --set train.batch_size=128 --set train.epochs=60
      --set train.patience_epochs=60)
python3 -m offline train "$config" "${common[@]}" "${head[@]}" --set "train.stage_time_limit_s=${COMB_S:-30}"
python3 -m offline export "$config" "${common[@]}" "${head[@]}" --output "$out/rtag-comb-2s.rtag"
for stage in audio spec comb; do cp "$work/run/$stage/fold0/metrics.csv" "$out/metrics_$stage.csv"; done
echo "trained and exported in $(( SECONDS - started )) s: $out"
