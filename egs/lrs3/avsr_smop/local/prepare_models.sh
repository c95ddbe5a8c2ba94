#!/usr/bin/env bash
# Stage 0 for LRS3: check the reference face of the mouth crops (MEAN_FACE), find the pretrained
# Whisper, LLM and AV-HuBERT named in db.sh, link them under pretrained/ (the paths the configs use)
# and convert AV-HuBERT to safetensors (no fairseq needed).
# Usage: local/prepare_models.sh [--nj N]   (--nj is accepted for the shared stage script; unused)
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($0:${BASH_LINENO[0]}) $*"; }

nj=1
. utils/parse_options.sh
: "${nj}"
. ./path.sh
. ./db.sh

local/check_mean_face.sh "${MEAN_FACE}"  # needed by stage 1: said now rather than after the models
mkdir -p pretrained/avhubert
link_hf() {  # <name> <local dir or hub id> -> pretrained/<name>
  local name=$1 src=$2 dir
  if [ -d "${src}" ]; then
    dir=$(cd "${src}" && pwd)
  elif ! dir=$(python3 -c "import sys; from huggingface_hub import snapshot_download; print(snapshot_download(sys.argv[1], local_files_only=True))" "${src}" 2>/dev/null); then
    log "Error: ${name} model '${src}' is neither a directory nor in the Hugging Face cache."
    log "  Download it on a machine with internet access (huggingface-cli download ${src}) and copy the"
    log "  directory here, then set ${name^^} in db.sh to that directory."
    exit 1
  fi
  [ -f "${dir}/config.json" ] || { log "Error: ${dir} has no config.json (not a save_pretrained directory)"; exit 1; }
  ln -sfn "${dir}" "pretrained/${name}"
  log "pretrained/${name} -> ${dir}"
}
link_hf whisper "${WHISPER}"
link_hf llm "${LLM}"

if [ -z "${AVHUBERT}" ] || [ ! -f "${AVHUBERT}" ]; then
  log "Error: set AVHUBERT in db.sh to the official AV-HuBERT checkpoint, e.g. large_vox_iter5.pt from"
  log "  https://dl.fbaipublicfiles.com/avhubert/model/lrs3_vox/clean-pretrain/large_vox_iter5.pt"
  log "  (AV-HuBERT license: non-commercial research use)"
  exit 1
fi
out=pretrained/avhubert/$(basename "${AVHUBERT%.pt}").safetensors
if [ ! -f "${out}" ]; then
  python3 -m smop.bin.convert_avhubert "${AVHUBERT}" "${out}"
fi
ln -sfn "$(basename "${out}")" pretrained/avhubert/avhubert.safetensors
log "pretrained/avhubert/avhubert.safetensors -> ${out}"
[ -n "${BABBLE_NOISE}" ] || log "Warning: BABBLE_NOISE is empty: no noise augmentation and no noisy test sets"
