#!/usr/bin/env bash
# Stage 0 of the mini recipe: generate the corpus, then briefly pretrain its small Whisper,
# AV-HuBERT and Llama on the training set and store them as the real releases are stored
# (HF directories; a fairseq checkpoint converted to safetensors by smop.bin.convert_avhubert).
# Usage: local/prepare_models.sh [--nj 2] [--corpus_size full|small] [--pretrain_steps N]
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($0:${BASH_LINENO[0]}) $*"; }

nj=2
corpus_size=full    # full: 1,200 trainval + 100 pretrain clips, 200 test; small: a quick debug corpus
pretrain_steps=     # optimisation steps of each small model (default: smop.mini.pretrain's)
. utils/parse_options.sh
case "${corpus_size}" in
  full) corpus_args="--n_trainval 1200 --n_valid 100 --n_pretrain 100 --n_test 200" ;;
  small) corpus_args="--n_trainval 240 --n_valid 24 --n_pretrain 16 --n_test 36" ;;
  *) log "Error: --corpus_size full or small"; exit 2 ;;
esac
pretrain_args=""
[ -n "${pretrain_steps}" ] && pretrain_args="--whisper_steps ${pretrain_steps} --avhubert_steps ${pretrain_steps} --lm_steps ${pretrain_steps}"
. ./path.sh
. ./db.sh

log "Mini corpus -> ${MINI_AV} (espeak-ng voices, synthetic talking faces)"
# shellcheck disable=SC2086
python3 -m smop.mini.corpus --out "${MINI_AV}" --nj "${nj}" ${corpus_args}

# The encoders pretrain on the prepared training and validation sets.
local/data.sh --nj "${nj}" --sets "train valid"

stamp=${PRETRAINED}/.done
want="$(cat "${MINI_AV}/.done") ${pretrain_args}"
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ]; then
  log "${PRETRAINED} is up to date"
else
  mkdir -p "${PRETRAINED}"
  rm -f "${stamp}"
  common=(--train_dir data/train --valid_dir data/valid --lm_text "${MINI_AV}/lm_text.txt"
          --noise "${MINI_AV}/babble.wav" --out_dir "${PRETRAINED}")
  pretrain() {  # <models> [env...]: one pretraining job, logged to ${PRETRAINED}/pretrain_<models>.log
    local what=$1; shift
    local log_file=${PRETRAINED}/pretrain_${what}.log
    # shellcheck disable=SC2086
    if ! env "$@" python3 -m smop.mini.pretrain "${common[@]}" --models "${what}" ${pretrain_args} > "${log_file}" 2>&1; then
      log "Error: ${what} pretraining failed:"; tail -n 20 "${log_file}" >&2; return 1
    fi
  }
  # The LLM first: its tokenizer is the encoders' attention-decoder vocabulary.
  log "Pretraining the small LLM -> ${PRETRAINED}/llm (log: ${PRETRAINED}/pretrain_llm.log)"
  pretrain llm || exit 1
  # The two encoders side by side with the cores split between them: small models use two threads
  # poorly (on 2 cores, two 1-thread Whisper pretrainings made 1.3x the steps per second of one
  # 2-thread run).
  threads=$(( $(nproc) / 2 )); [ "${threads}" -ge 1 ] || threads=1
  log "Pretraining the small Whisper and AV-HuBERT side by side, ${threads} thread(s) each (logs: ${PRETRAINED}/pretrain_{whisper,avhubert}.log)"
  pids=()
  for what in whisper avhubert; do
    pretrain "${what}" OMP_NUM_THREADS="${threads}" &
    pids+=($!)
  done
  failed=false
  for pid in "${pids[@]}"; do
    wait "${pid}" || failed=true
  done
  "${failed}" && exit 1
  grep -hE "validation WER|final training loss" "${PRETRAINED}"/pretrain_{llm,whisper,avhubert}.log || true
  echo "${want}" > "${stamp}"
fi

# Exactly what an LRS3 user does with the official checkpoint.
python3 -m smop.bin.convert_avhubert "${PRETRAINED}/avhubert/mini_vox_iter5.pt" "${PRETRAINED}/avhubert/mini_vox_iter5.safetensors"
for f in "${PRETRAINED}/whisper/config.json" "${PRETRAINED}/llm/config.json" "${PRETRAINED}/avhubert/mini_vox_iter5.safetensors"; do
  [ -f "${f}" ] || { log "Error: ${f} missing"; exit 1; }
done
log "Pretrained models ready in ${PRETRAINED}"
