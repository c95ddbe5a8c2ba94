#!/usr/bin/env bash
# The test command of README.md (and of CI): install what is needed, run the unit tests, then the
# mini recipe end to end (stages 0-6: the corpus and the small pretrained models as the default run
# makes them) with two short DEBUG configs, ASR and AVSR, in its own work directory ci/work/mini_av
# (its files link to egs/mini_av/avsr_smop's): the user's runs of the recipe there (data/,
# pretrained/, exp/, RESULTS.md) are never touched, and this script checks so. The AVSR model must
# read -5 dB babble much better than the ASR model: a change that breaks the video path fails here.
# Usage: ci/test.sh [--skip_recipe] [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
recipe=egs/mini_av/avsr_smop
work=ci/work/mini_av

skip_recipe=false
if [ "${1:-}" = --skip_recipe ]; then skip_recipe=true; shift; fi

mkdir -p ci/work
started=ci/work/.started
touch "${started}"
untouched() {  # fails when this run wrote anything under the recipe (find does not follow its links)
  local written
  written=$(find "${recipe}" -newer "${started}" | sed -n 1,5p)
  if [ -n "${written}" ]; then
    echo "ci/test.sh wrote into ${recipe}, which holds the user's runs:" >&2
    echo "${written}" >&2
    return 1
  fi
  echo "${recipe} untouched by this run"
}

# dlib, bitsandbytes, silero-vad, gradio+playwright+chromium: their tests run in CI
tools/install.sh --extra landmarks --extra quant --extra vad --extra demo
# Style: the layout is ruff's and lint is clean (pyproject.toml holds the settings).
tools/venv/bin/ruff format --check --diff .
tools/venv/bin/ruff check .
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# As root, install.sh has installed Slurm: its tests must run (start a cluster), not skip.
if [ "$(id -u)" = 0 ]; then export SMOP_SLURM_TESTS=required; fi
tools/venv/bin/python -m pytest -q "$@"

if "${skip_recipe}"; then untouched; exit 0; fi
echo "=== mini recipe (DEBUG configs: ASR and AVSR, 300 steps each) ==="
# The work directory: a link to each of the recipe's files (git's list: not the user's outputs).
mkdir -p "${work}"
for f in $(git ls-files "${recipe}" | sed "s|^${recipe}/||; s|/.*||" | sort -u); do
  [ "${f}" = RESULTS.md ] || ln -sfn "${root}/${recipe}/${f}" "${work}/${f}"
done
cd "${work}"
export MINI_AV=downloads/mini_av
rm -rf exp/train_debug exp/train_debug_asr RESULTS.md
./run.sh --train_configs "conf/train_debug_asr.yaml conf/train_debug.yaml" --noise_snrs "-5 0" \
  --decode_args "--beam_size 2"
# Every scored set must have a sclite report whose counts score_wer checked, and RESULTS.md a row each.
for exp in train_debug_asr train_debug; do
  for set in test test_snr-5 test_snr0; do
    f=exp/${exp}/decode_decode_valid.loss.ave/${set}/score_wer/wer.json
    [ -f "${f}" ] || { echo "missing ${f}" >&2; exit 1; }
  done
done
for set in test test_snr-5 test_snr0; do
  [ "$(grep -c "^|${set}|" RESULTS.md)" = 2 ] || { echo "RESULTS.md has not a row for ${set} per model" >&2; exit 1; }
done
"${root}/tools/venv/bin/python" - << 'PY'
import json

def wer(exp, s):
    r = json.load(open(f"exp/{exp}/decode_decode_valid.loss.ave/{s}/score_wer/wer.json"))
    fewest, most = r["check"]["err"]  # an alignment at sclite's own costs (score_wer checks it too)
    assert fewest <= r["counts"]["err"] <= most and r["counts"]["wrd"] == r["jiwer"]["wrd"], r
    return r["wer"]

for exp in ("train_debug_asr", "train_debug"):
    print(exp + ": " + ", ".join(f"{s} WER {wer(exp, s):.1f} %" for s in ("test", "test_snr-5", "test_snr0")))
# The ordering the method claims. Over seeds 0-2 the AVSR model read -5 dB babble at 0.40-0.53x the
# ASR model's WER (greedy); a broken video path leaves it near 1x.
RATIO = 0.75
asr, avsr = wer("train_debug_asr", "test_snr-5"), wer("train_debug", "test_snr-5")
assert avsr <= RATIO * asr, (
    f"at -5 dB babble the AVSR model (train_debug) reads {avsr:.1f} % WER against the ASR model's "
    f"(train_debug_asr) {asr:.1f} %: {avsr / asr:.2f}x, over {RATIO}x. The video path (mouth crops, "
    "AV-HuBERT, video compressor or projector) no longer helps: look at what changed there."
)
print(f"-5 dB babble: AVSR {avsr:.1f} % = {avsr / asr:.2f}x ASR {asr:.1f} % (at most {RATIO}x)")
PY
[ -x exp/train_debug/decode_decode_valid.loss.ave/run.sh ] || { echo "stage 4 wrote no replay script exp/train_debug/decode_decode_valid.loss.ave/run.sh" >&2; exit 1; }
# Stage 6 packed the model; smop-transcribe decodes a test video with it, from another directory.
pack=$(pwd)/exp/train_debug/pack
for f in README.md config.yaml decode.yaml model.safetensors meta.yaml pretrained/decoder/config.json; do
  [ -f "${pack}/${f}" ] || { echo "the pack lacks ${f}" >&2; exit 1; }
done
# sed, not head: head exits after its line and, under pipefail, sort's next write fails with
# SIGPIPE (exit 141) whenever the list outgrows one write (CI failed so on 200 long paths).
mp4=$(find "$(pwd)/${MINI_AV}/corpus/test" -name '*.mp4' | sort | sed -n 1p)
grep -q '^mouth_crop: mouth_crop.yaml' "${pack}/meta.yaml" || { echo "the pack records no mouth-crop settings" >&2; exit 1; }
# The pack proves its card: the test set it was scored on, decoded again with it (2 jobs, split as
# stage 4 split them), gives the card's WER to the word (verify_model exits 1 and says what differs otherwise).
"${root}/tools/venv/bin/python" -m smop.bin.verify_model --model "${pack}" --data_dir data/test --nj 2
out=$(pwd)/exp/train_debug/transcribe_check.txt
(cd /tmp && "${root}/tools/venv/bin/smop-transcribe" --model "${pack}" \
  --landmarks "$(dirname "${mp4}" | sed 's|/corpus/|/landmarks/|')/{stem}.npy" "${mp4}") | tee "${out}"
# Without landmark files the face is detected (dlib finds the mini corpus's faces).
(cd /tmp && "${root}/tools/venv/bin/smop-transcribe" --model "${pack}" "${mp4}") | tee -a "${out}"
[ "$(grep -c "^${mp4} [a-z]" "${out}")" = 2 ] || { echo "smop-transcribe gave no transcript for ${mp4}" >&2; exit 1; }
cd "${root}"
untouched
echo "mini recipe OK: ${root}/${work}/RESULTS.md"
