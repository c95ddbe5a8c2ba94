#!/usr/bin/env bash
# LRS3 -> data/{train,valid,test}: 16 kHz audio, 96x96 grayscale mouth ROIs aligned to MEAN_FACE as
# the official preparation aligns them, lower-cased text.
# Usage: local/data.sh [--nj 8] [--train_subsets pretrain,trainval] [--sets "train valid test"] [--landmark_detector hog]
# Without LRS3_LANDMARKS, landmarks are first detected with dlib into data/local/landmarks.
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($0:${BASH_LINENO[0]}) $*"; }

nj=8
train_subsets=pretrain,trainval   # trainval only: the 30 h low-resource setting
max_seconds=16                    # pretrain clips are cut at word boundaries to at most this
sets="train valid test"
landmark_detector=hog             # without LRS3_LANDMARKS: dlib's hog (fast) or cnn (two orders slower on CPU)
. utils/parse_options.sh
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

valid_id=${LRS3_VALID_ID}
if [ -z "${valid_id}" ]; then
  valid_id=data/local/valid.id
  if [ ! -f "${valid_id}" ]; then
    log "No LRS3_VALID_ID: holding out 1200 random trainval videos (seed 0) -> ${valid_id}"
    mkdir -p data/local
    (cd "${LRS3}/trainval" && find . -name '*.mp4' | sed 's|^\./||; s|\.mp4$||' | sort) > data/local/trainval.id
    python3 -c "import random, sys; ids = open(sys.argv[1]).read().split(); random.Random(0).shuffle(ids); print('\n'.join(sorted(ids[:1200])))" \
      data/local/trainval.id > "${valid_id}.tmp" && mv "${valid_id}.tmp" "${valid_id}"
  fi
fi
if [ -z "${LRS3_LANDMARKS}" ]; then
  subsets=""
  for s in ${sets}; do
    case "${s}" in train) subsets+=" ${train_subsets//,/ }" ;; valid) subsets+=" trainval" ;; test) subsets+=" test" ;; esac
  done
  for sub in $(tr ' ' '\n' <<< "${subsets}" | sed '/^$/d' | sort -u); do
    if [ -f "${landmarks}/${sub}/.done" ]; then
      log "${landmarks}/${sub} exists (remove it to detect again)"
      continue
    fi
    log "No LRS3_LANDMARKS: dlib ${landmark_detector} landmarks of ${LRS3}/${sub} -> ${landmarks}/${sub} (report: ${landmarks}/${sub}/detect_report.txt)"
    python3 -m smop.bin.detect_landmarks --corpus_root "${LRS3}" --subsets "${sub}" --landmarks_root "${landmarks}" \
      --detector "${landmark_detector}" --nj "${nj}"
    touch "${landmarks}/${sub}/.done"
  done
fi
common=(--corpus_root "${LRS3}" --landmarks_root "${landmarks}" --mean_face "${MEAN_FACE}" --nj "${nj}")
for s in ${sets}; do
  case "${s}" in
    train) opts=(--subsets "${train_subsets}" --exclude_list "${valid_id}" --max_seconds "${max_seconds}") ;;
    valid) opts=(--subsets trainval --include_list "${valid_id}") ;;
    test) opts=(--subsets test) ;;
    *) log "Error: unknown set ${s}"; exit 1 ;;
  esac
  # The stamp holds the reference face's digest: sets cropped with another face are prepared again.
  want=$(sha256sum "${MEAN_FACE}" | cut -d' ' -f1)
  if [ -f "data/${s}/.done" ] && [ "$(cat "data/${s}/.done")" = "${want}" ]; then
    log "data/${s} exists (remove data/${s}/.done to prepare it again)"
    continue
  fi
  log "data/${s}: mouth ROIs and 16 kHz audio -> dump/media/${s} (report: data/${s}/prep_report.txt)"
  python3 -m smop.bin.prepare_lrs3 "${common[@]}" "${opts[@]}" --output_dir "data/${s}" --media_dir "dump/media/${s}"
  echo "${want}" > "data/${s}/.done"
done
log "Successfully finished data preparation: ${sets}"
