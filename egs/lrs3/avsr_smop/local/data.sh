#!/usr/bin/env bash
# Stage 0 for LRS3: data/{train,valid,test} with 16 kHz audio, 96x96 grayscale mouth ROIs aligned to
# MEAN_FACE as the official preparation aligns them, and lower-cased text. Without LRS3_LANDMARKS,
# landmarks are first detected with dlib into data/local/landmarks.
set -euo pipefail
. utils/log.sh
. utils/stamp.sh

nj=8                              # parallel jobs
train_subsets=pretrain,trainval   # trainval only: the 30 h low-resource setting
max_seconds=16                    # pretrain clips are cut at word boundaries to at most this
sets="train valid test"           # data dirs to prepare
landmark_detector=hog             # without LRS3_LANDMARKS: dlib's hog (fast) or cnn (two orders slower on CPU)

usage() {
  cat << HELP_END
Usage: $0 [options]
  --nj                 # parallel jobs (${nj})
  --train_subsets      # LRS3 subsets of the training set (${train_subsets}; trainval: the 30 h setting)
  --max_seconds        # pretrain clips are cut at word boundaries to at most this (${max_seconds})
  --sets               # data dirs to prepare ("${sets}")
  --landmark_detector  # without LRS3_LANDMARKS: dlib's hog or cnn (${landmark_detector})
Reads LRS3, LRS3_LANDMARKS, MEAN_FACE and LRS3_VALID_ID from db.sh; writes data/<set> and
data/local/landmarks/<subset> (each with a .done stamp, see utils/stamp.sh).
HELP_END
}

log "$0 $*"
. utils/parse_options.sh
if [ $# -ne 0 ]; then usage >&2; log "Error: no positional arguments are required (got: $*)."; exit 2; fi
for s in ${sets}; do
  case "${s}" in train|valid|test) ;; *) usage >&2; log "Error: unknown set '${s}' (train, valid or test)"; exit 2 ;; esac
done
. ./path.sh
. ./db.sh

if [ -z "${LRS3}" ] || [ ! -d "${LRS3}/test" ]; then
  log "Error: set LRS3 in db.sh to the corpus root (with pretrain/ trainval/ test/)"; exit 1
fi
if [ -n "${LRS3_LANDMARKS}" ] && [ ! -d "${LRS3_LANDMARKS}" ]; then
  log "Error: LRS3_LANDMARKS=${LRS3_LANDMARKS} is not a directory (see db.sh; leave it empty to detect landmarks)"; exit 1
fi
local/check_mean_face.sh "${MEAN_FACE}"
landmarks=${LRS3_LANDMARKS:-data/local/landmarks}

# The validation ids, held out of the training set (only train and valid need them).
valid_id=${LRS3_VALID_ID}
needs_valid_id=false
case " ${sets} " in *" train "*|*" valid "*) needs_valid_id=true ;; esac
if "${needs_valid_id}" && [ -n "${valid_id}" ] && [ ! -f "${valid_id}" ]; then
  log "Error: LRS3_VALID_ID=${valid_id} is not a file (db.sh; AV-HuBERT's lrs3-valid.id, or empty to hold out 1200 videos)"; exit 1
fi
if "${needs_valid_id}" && [ -z "${valid_id}" ]; then
  valid_id=data/local/valid.id
  if [ ! -f "${valid_id}" ]; then
    [ -d "${LRS3}/trainval" ] || { log "Error: ${LRS3}/trainval not found: the validation set is held out of it (LRS3 in db.sh)"; exit 1; }
    mkdir -p data/local
    (cd "${LRS3}/trainval" && find . -name '*.mp4' | sed 's|^\./||; s|\.mp4$||' | sort) > data/local/trainval.id
    if [ ! -s data/local/trainval.id ]; then
      log "Error: ${LRS3}/trainval lists no video (<speaker>/<id>.mp4): no validation set can be held out of it."
      log "  Check LRS3 in db.sh, or set LRS3_VALID_ID to a list of <speaker>/<id> to hold out."
      exit 1
    fi
    log "No LRS3_VALID_ID: holding out 1200 random trainval videos (seed 0) -> ${valid_id}"
    python3 -c "import random, sys; ids = open(sys.argv[1]).read().split(); random.Random(0).shuffle(ids); print('\n'.join(sorted(ids[:1200])))" \
      data/local/trainval.id > "${valid_id}.tmp"
    mv "${valid_id}.tmp" "${valid_id}"
  fi
fi

if [ -z "${LRS3_LANDMARKS}" ]; then
  subsets=""
  for s in ${sets}; do
    case "${s}" in train) subsets+=" ${train_subsets//,/ }" ;; valid) subsets+=" trainval" ;; test) subsets+=" test" ;; esac
  done
  for sub in $(tr ' ' '\n' <<< "${subsets}" | sed '/^$/d' | sort -u); do
    dir=${landmarks}/${sub}
    stamp=$(printf '%s\n' "detect_landmarks --corpus_root ${LRS3} --subsets ${sub} --detector ${landmark_detector}")
    if is_done "${dir}" "${stamp}"; then
      log "${dir} is up to date"
      continue
    fi
    # Detection keeps the files it finished (a re-run resumes): landmarks made from other inputs
    # would stay, so they are removed by hand (hours of work are not thrown away unasked).
    if [ -f "${dir}/.done" ]; then
      log "Error: ${dir} holds landmarks made from other inputs (above): remove it to detect them again (rm -r ${dir})"
      exit 1
    fi
    log "No LRS3_LANDMARKS: dlib ${landmark_detector} landmarks of ${LRS3}/${sub} -> ${dir} (report: ${dir}/detect_report.txt)"
    python3 -m smop.bin.detect_landmarks --corpus_root "${LRS3}" --subsets "${sub}" --landmarks_root "${landmarks}" \
      --detector "${landmark_detector}" --nj "${nj}"
    mark_done "${dir}" "${stamp}"
  done
fi

common=(--corpus_root "${LRS3}" --landmarks_root "${landmarks}" --mean_face "${MEAN_FACE}")
for s in ${sets}; do
  case "${s}" in
    train) opts=(--subsets "${train_subsets}" --exclude_list "${valid_id}" --max_seconds "${max_seconds}") ;;
    valid) opts=(--subsets trainval --include_list "${valid_id}") ;;
    test) opts=(--subsets test) ;;
  esac
  # What the set is made from: the command, and the digests of the reference face and the id list.
  stamp=$(printf '%s\n' "prepare_lrs3 ${common[*]} ${opts[*]}" "mean_face: $(sha256_of "${MEAN_FACE}")")
  [ "${s}" = test ] || stamp+=$'\n'"valid_id: $(sha256_of "${valid_id}")"
  if is_done "data/${s}" "${stamp}"; then
    log "data/${s} is up to date"
    continue
  fi
  rm -f "data/${s}/.done"
  log "data/${s}: mouth ROIs and 16 kHz audio -> dump/media/${s} (report: data/${s}/prep_report.txt)"
  python3 -m smop.bin.prepare_lrs3 "${common[@]}" "${opts[@]}" --nj "${nj}" --output_dir "data/${s}" --media_dir "dump/media/${s}"
  mark_done "data/${s}" "${stamp}"
done
[ -n "${BABBLE_NOISE}" ] || log "Warning: BABBLE_NOISE is empty in db.sh: no noisy test sets and no noise augmentation"
log "Successfully finished data preparation: ${sets}"
