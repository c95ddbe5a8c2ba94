#!/usr/bin/env bash
# Stage 0 of the mini recipe: generate the mini audio-visual corpus (LRS3 layout; espeak-ng voices,
# synthetic talking faces) into MINI_AV, then data/{train,valid,test} with the LRS3 data preparation.
set -euo pipefail
. utils/log.sh
. utils/stamp.sh

nj=2                     # parallel jobs
corpus_size=full         # full: 1,200 trainval + 100 pretrain clips, 200 test; small: a quick debug corpus
sets="train valid test"  # data dirs to prepare

usage() {
  cat << HELP_END
Usage: $0 [options]
  --nj           # parallel jobs (${nj})
  --corpus_size  # full or small (${corpus_size})
  --sets         # data dirs to prepare ("${sets}")
Writes MINI_AV (db.sh) and data/<set> (each with a .done stamp, see utils/stamp.sh).
HELP_END
}

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then usage >&2; log "Error: no positional arguments are required (got: $*)."; exit 2; fi
case "${corpus_size}" in
  full) corpus_args=(--n_trainval 1200 --n_valid 100 --n_pretrain 100 --n_test 200) ;;
  small) corpus_args=(--n_trainval 240 --n_valid 24 --n_pretrain 16 --n_test 36) ;;
  *) usage >&2; log "Error: --corpus_size is full or small, not '${corpus_size}'"; exit 2 ;;
esac
for s in ${sets}; do  # before minutes of corpus generation
  case "${s}" in train|valid|test) ;; *) usage >&2; log "Error: unknown set '${s}' (train, valid or test)"; exit 2 ;; esac
done
. ./path.sh
. ./db.sh

# The corpus keeps its own stamp (a digest of its settings) and is generated again when they change.
log "Mini corpus (${corpus_size}) -> ${MINI_AV}"
python3 -m smop.mini.corpus --out "${MINI_AV}" --nj "${nj}" "${corpus_args[@]}"

# Mouths aligned to the face the corpus draws its faces from (LRS3 uses the official mean face).
common=(--corpus_root "${MINI_AV}/corpus" --landmarks_root "${MINI_AV}/landmarks"
        --mean_face "${MINI_AV}/mean_face.npy" --roi_size 96 --roi_resize 48)
for s in ${sets}; do
  case "${s}" in
    train) opts=(--subsets "pretrain,trainval" --exclude_list "${MINI_AV}/valid.id" --max_seconds 4) ;;
    valid) opts=(--subsets trainval --include_list "${MINI_AV}/valid.id") ;;
    test) opts=(--subsets test) ;;
  esac
  stamp=$(printf '%s\n' "prepare_lrs3 ${common[*]} ${opts[*]}" "corpus: $(cat "${MINI_AV}/.done")")
  if is_done "data/${s}" "${stamp}"; then
    log "data/${s} is up to date"
    continue
  fi
  rm -f "data/${s}/.done"
  log "data/${s}: mouth ROIs (48x48 from 96x96) and 16 kHz audio -> dump/media/${s}"
  python3 -m smop.bin.prepare_lrs3 "${common[@]}" "${opts[@]}" --nj "${nj}" --output_dir "data/${s}" --media_dir "dump/media/${s}"
  mark_done "data/${s}" "${stamp}"
done
log "Successfully finished data preparation: ${sets}"
