#!/usr/bin/env bash
# Llama-SMoP on LRS3: AVSR with Whisper-medium.en + AV-HuBERT Large + Llama-3.2-1B and a DEDR
# sparse mixture of projectors. Set the paths in db.sh (or the environment) first.
#   ./run.sh --stage 3 --train_config conf/train_jejr.yaml   # another layout, same data
# Stage 6 packs each model: Whisper and the LLM named by their hub ids (found through the HF cache),
# the converted AV-HuBERT copied in (it is on no hub).
set -euo pipefail

. ./db.sh

./avsr.sh \
  --train_set train \
  --valid_set valid \
  --test_sets test \
  --noise_file "${BABBLE_NOISE}" \
  --noise_snrs "-5 0 5 10" \
  --train_configs conf/train_dedr.yaml \
  --decode_config conf/decode.yaml \
  --ngpu 1 \
  --nj 8 \
  --pack_args "--copy_pretrained video_encoder --part_license video_encoder=AV-HuBERT-licence-non-commercial" \
  "$@"
