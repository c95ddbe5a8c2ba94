#!/usr/bin/env bash
# Mini corpus (LRS3 layout) -> data/{train,valid,test} with the LRS3 data preparation.
# Usage: local/data.sh [--nj 2] [--sets "train valid test"]
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($0:${BASH_LINENO[0]}) $*"; }

nj=2
sets="train valid test"
. utils/parse_options.sh
. ./path.sh
. ./db.sh

[ -f "${MINI_AV}/.done" ] || { log "Error: the mini corpus ${MINI_AV} is missing: run stage 0"; exit 1; }
# Mouths aligned to the face the corpus draws its faces from (LRS3 uses the official mean face).
common=(--corpus_root "${MINI_AV}/corpus" --landmarks_root "${MINI_AV}/landmarks" --nj "${nj}"
        --mean_face "${MINI_AV}/mean_face.npy" --roi_size 96 --roi_resize 48)
for s in ${sets}; do
  case "${s}" in
    train) opts=(--subsets "pretrain,trainval" --exclude_list "${MINI_AV}/valid.id" --max_seconds 4) ;;
    valid) opts=(--subsets trainval --include_list "${MINI_AV}/valid.id") ;;
    test) opts=(--subsets test) ;;
    *) log "Error: unknown set ${s}"; exit 1 ;;
  esac
  stamp=data/${s}/.done
  want=$(cat "${MINI_AV}/.done")
  if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ]; then
    log "data/${s} is up to date"
    continue
  fi
  log "data/${s}: mouth ROIs (48x48 from 96x96) and 16 kHz audio -> dump/media/${s}"
  python3 -m smop.bin.prepare_lrs3 "${common[@]}" "${opts[@]}" --output_dir "data/${s}" --media_dir "dump/media/${s}"
  echo "${want}" > "${stamp}"
done
log "Successfully finished data preparation: ${sets}"
