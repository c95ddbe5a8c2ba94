#!/usr/bin/env bash
# The mini audio-visual corpus end to end on a CPU: ASR (audio), VSR (video) and AVSR (both) with a
# DEDR sparse mixture of projectors (ASR and AVSR trained with babble noise), scored clean and at
# -5..10 dB (VSR reads no audio: clean only).
# Stage 0 generates the corpus and prepares data/; stage 1 pretrains the small models on it.
set -euo pipefail

. ./db.sh
# The packs (stage 6) hold the small pretrained models too; all were made by smop from the mini corpus.
mini_licences=audio_encoder=apache-2.0,video_encoder=apache-2.0,decoder=apache-2.0

./avsr.sh \
  --train_set train \
  --valid_set valid \
  --test_sets test \
  --noise_file "${MINI_AV}/babble.wav" \
  --noise_snrs "-5 0 5 10" \
  --train_configs "conf/train_asr_dedr.yaml conf/train_vsr_dedr.yaml conf/train_dedr.yaml" \
  --decode_config conf/decode.yaml \
  --nj 2 \
  --pack_args "--copy_pretrained all --license apache-2.0 --part_license ${mini_licences}" \
  "$@"
