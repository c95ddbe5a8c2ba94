#!/usr/bin/env bash
# Stage 1 for LRS3: find the pretrained Whisper, LLM and AV-HuBERT named in db.sh, link them under
# pretrained/ (the paths the configs use) and convert AV-HuBERT to safetensors (no fairseq needed).
set -euo pipefail
. utils/log.sh
. utils/stamp.sh

check_only=false   # only check that the models db.sh names are there (avsr.sh, before stage 0)

usage() {
  cat << HELP_END
Usage: $0 [options]
  --check_only  # only check that the models db.sh names are there (${check_only})
Reads WHISPER, LLM and AVHUBERT from db.sh; writes pretrained/{whisper,llm} (links) and
pretrained/avhubert (the converted checkpoint, with a .done stamp, see utils/stamp.sh).
HELP_END
}

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then usage >&2; log "Error: no positional arguments are required (got: $*)."; exit 2; fi
. ./path.sh
. ./db.sh

link_hf() {  # <name> <local dir or hub id> -> pretrained/<name> (with --check_only: found, or an error)
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
  "${check_only}" && return 0
  mkdir -p pretrained
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
if "${check_only}"; then
  log "The pretrained models db.sh names are there: WHISPER=${WHISPER} LLM=${LLM} AVHUBERT=${AVHUBERT}"
  exit 0
fi
mkdir -p pretrained/avhubert
name=$(basename "${AVHUBERT%.pt}").safetensors
stamp=$(printf '%s\n' "convert_avhubert ${AVHUBERT} ${name}" "checkpoint: $(sha256_of "${AVHUBERT}")")
if is_done pretrained/avhubert "${stamp}"; then
  log "pretrained/avhubert is up to date"
else
  rm -f pretrained/avhubert/.done
  python3 -m smop.bin.convert_avhubert "${AVHUBERT}" "pretrained/avhubert/${name}"
  ln -sfn "${name}" pretrained/avhubert/avhubert.safetensors
  mark_done pretrained/avhubert "${stamp}"
fi
log "pretrained/avhubert/avhubert.safetensors -> ${name}"
log "Successfully finished: pretrained models in pretrained/"
