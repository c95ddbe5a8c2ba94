#!/usr/bin/env bash
# Stage 1 of the mini recipe: briefly pretrain its small Whisper, AV-HuBERT and Llama on the prepared
# training and validation sets (stage 0) and store them as the real releases are stored (HF
# directories; a fairseq checkpoint converted to safetensors by smop.bin.convert_avhubert).
set -euo pipefail
. utils/log.sh
. utils/stamp.sh

pretrain_steps=     # optimisation steps of each small model (empty: smop.mini.pretrain's defaults)
check_only=false    # only check the options (the small models are made from the data of stage 0)

usage() {
  cat << HELP_END
Usage: $0 [options]
  --pretrain_steps  # optimisation steps of each small model ("${pretrain_steps}"; empty: smop.mini.pretrain's)
  --check_only      # only check the options (${check_only})
Reads data/{train,valid} and MINI_AV (db.sh); writes PRETRAINED (db.sh) with a .done stamp (see utils/stamp.sh).
HELP_END
}

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then usage >&2; log "Error: no positional arguments are required (got: $*)."; exit 2; fi
pretrain_args=()
[ -n "${pretrain_steps}" ] && pretrain_args=(--whisper_steps "${pretrain_steps}" --avhubert_steps "${pretrain_steps}" --lm_steps "${pretrain_steps}")
[[ -z "${pretrain_steps}" || "${pretrain_steps}" =~ ^[0-9]+$ ]] || { log "Error: --pretrain_steps must be a number"; exit 2; }
"${check_only}" && exit 0
. ./path.sh
. ./db.sh

for d in data/train data/valid; do
  [ -f "${d}/.done" ] || { log "Error: ${d} is not prepared: run stage 0 (data preparation) first"; exit 1; }
done
# What the models are made from: the prepared sets (their stamps name the corpus) and the settings.
stamp=$(printf '%s\n' "pretrain ${pretrain_args[*]}" "data/train: $(sha256_of data/train/.done)" \
  "data/valid: $(sha256_of data/valid/.done)")
if is_done "${PRETRAINED}" "${stamp}"; then
  log "${PRETRAINED} is up to date"
  exit 0
fi
mkdir -p "${PRETRAINED}"
rm -f "${PRETRAINED}/.done"
common=(--train_dir data/train --valid_dir data/valid --lm_text "${MINI_AV}/lm_text.txt"
        --noise "${MINI_AV}/babble.wav" --out_dir "${PRETRAINED}")
pretrain() {  # <models> [env...]: one pretraining job, logged to ${PRETRAINED}/pretrain_<models>.log
  local what=$1; shift
  local log_file=${PRETRAINED}/pretrain_${what}.log
  if ! env "$@" python3 -m smop.mini.pretrain "${common[@]}" --models "${what}" "${pretrain_args[@]}" > "${log_file}" 2>&1; then
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

# Exactly what an LRS3 user does with the official checkpoint.
python3 -m smop.bin.convert_avhubert "${PRETRAINED}/avhubert/mini_vox_iter5.pt" "${PRETRAINED}/avhubert/mini_vox_iter5.safetensors"
for f in "${PRETRAINED}/whisper/config.json" "${PRETRAINED}/llm/config.json" "${PRETRAINED}/avhubert/mini_vox_iter5.safetensors"; do
  [ -f "${f}" ] || { log "Error: ${f} missing"; exit 1; }
done
mark_done "${PRETRAINED}" "${stamp}"
log "Successfully finished: pretrained models in ${PRETRAINED}"
