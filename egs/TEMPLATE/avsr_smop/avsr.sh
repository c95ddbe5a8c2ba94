#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2154  # path.sh, cmd.sh (train/decode commands) come from the recipe
# Llama-SMoP recipe stages, shared by every corpus (called by each recipe's run.sh).
#
#   0. Tools and pretrained models   local/prepare_models.sh
#   1. Data preparation              local/data.sh -> data/<set>; noisy copies of every test set
#   2. Shapes and token statistics   data/<set> -> dump/shapes/<config name>/<set>
#   3. Training                      conf/train_*.yaml -> exp/<config name>
#   4. Decoding                      exp/<config name>/decode_<decode config>/<test set>
#   5. Scoring and RESULTS.md        sclite + jiwer, expert usage plot, RESULTS.md
#   6. Packing                       exp/<config name>/pack: a relocatable model with its model card
set -euo pipefail

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
SECONDS=0

# General
stage=0              # first stage to run
stop_stage=6         # last stage to run
nj=4                 # parallel jobs for data preparation and decoding
ngpu=0               # GPUs for training (decoding uses one GPU when ngpu > 0)
num_nodes=1          # nodes for training (with slurm)
python=python3       # the interpreter of tools/venv (path.sh puts it first on PATH)
# Data
train_set=train      # training data dir under data/
valid_set=valid      # validation data dir (held out of the training data, never test)
test_sets="test"     # clean test sets; noisy copies <set>_snr<N> are made for each
noise_file=          # babble noise (16 kHz wav) for noisy test sets and training augmentation
noise_snrs="-5 0 5 10"  # SNRs (dB) of the noisy test sets
noise_seed=0         # seed of the noise offsets (same seed -> bit-identical noisy audio)
data_prep_args=      # extra options for local/data.sh
model_prep_args=     # extra options for local/prepare_models.sh
# Training
train_configs=conf/train_dedr.yaml  # one or more training configs
train_config=        # a single config (overrides train_configs)
train_args=          # extra options for smop.bin.avsr_train
# Decoding
decode_config=conf/decode.yaml
decode_args=         # extra options for smop.bin.avsr_inference
inference_model=valid.loss.ave.pth  # which checkpoint to decode with
decode_noisy=true    # also decode the noisy copies of the test sets
decode_threads=      # CPU threads per decoding job (default: this machine's cores / jobs, at least 1)
# Packing
pack_args=           # extra options for smop.bin.pack_model (e.g. --copy_pretrained all, --hub_id <you>/<name>)

help_message=$(cat << HELP_END
Usage: $0 [options]

Options:
  --stage          # first stage (default: ${stage})
  --stop_stage     # last stage (default: ${stop_stage})
  --nj             # parallel jobs for data prep and decoding (default: ${nj})
  --ngpu           # GPUs for training (default: ${ngpu})
  --num_nodes      # nodes for training (default: ${num_nodes})
  --train_set      # (default: ${train_set})
  --valid_set      # (default: ${valid_set})
  --test_sets      # (default: "${test_sets}")
  --noise_file     # babble noise wav (default: "${noise_file}")
  --noise_snrs     # SNRs of the noisy test sets (default: "${noise_snrs}")
  --noise_seed     # (default: ${noise_seed})
  --data_prep_args   # extra options for local/data.sh (default: "${data_prep_args}")
  --model_prep_args  # extra options for local/prepare_models.sh (default: "${model_prep_args}")
  --train_configs  # training configs, each trained in exp/<config name> (default: "${train_configs}")
  --train_config   # one training config (overrides --train_configs)
  --train_args     # extra training options (default: "${train_args}")
  --decode_config  # (default: ${decode_config})
  --decode_args    # extra decoding options (default: "${decode_args}")
  --inference_model  # checkpoint to decode with (default: ${inference_model})
  --decode_noisy   # decode the noisy test sets too (default: ${decode_noisy})
  --decode_threads # CPU threads per decoding job (default: cores / jobs)
  --pack_args      # extra options for smop.bin.pack_model (default: "${pack_args}")
HELP_END
)

log "$0 $*"
run_args=$(printf "%q " "$0" "$@")
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  log "${help_message}"
  log "Error: no positional arguments are required."
  exit 2
fi
. ./path.sh
. ./cmd.sh

[ -n "${train_config}" ] && train_configs="${train_config}"
# Every set the recipe scores: each clean test set and its noisy copies.
eval_sets=""
for t in ${test_sets}; do
  eval_sets+="${t} "
  if "${decode_noisy}" && [ -n "${noise_file}" ]; then for snr in ${noise_snrs}; do eval_sets+="${t}_snr${snr} "; done; fi
done

tag_of() { basename "${1%.*}"; }
modality_of() { ${python} -m smop.bin.data_args --config "$1" --modality_only; }
data_args() {  # <config> <set> <prefix> [--text]: the --*data_path_and_name_and_type options of its modality
  ${python} -m smop.bin.data_args --config "$1" --data_dir "data/$2" --prefix "$3" "${@:4}"
}

# ========================================================================================= 0
if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 0 ]; then
  log "Stage 0: Tools and pretrained models"
  if ! ${python} -c "import smop, espnet2" 2>/dev/null; then
    log "tools/venv is missing: running tools/install.sh"
    "${SMOP_ROOT}/tools/install.sh"
  fi
  # shellcheck disable=SC2086
  local/prepare_models.sh --nj "${nj}" ${model_prep_args}
fi

# ========================================================================================= 1
if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  log "Stage 1: Data preparation: local/data.sh -> data/{${train_set},${valid_set},${test_sets// /,}}"
  # shellcheck disable=SC2086
  local/data.sh --nj "${nj}" ${data_prep_args}
  if [ -n "${noise_file}" ]; then
    [ -f "${noise_file}" ] || { log "Error: noise file ${noise_file} not found (see db.sh)"; exit 1; }
    for t in ${test_sets}; do
      for snr in ${noise_snrs}; do
        log "Noisy copy: data/${t} + babble at ${snr} dB -> data/${t}_snr${snr}"
        ${python} -m smop.bin.make_noisy_set --src "data/${t}" --dst "data/${t}_snr${snr}" \
          --media_dir "dump/media/${t}_snr${snr}" --noise "${noise_file}" --snr "${snr}" --seed "${noise_seed}"
      done
    done
  fi
  for d in "${train_set}" "${valid_set}" ${eval_sets}; do
    ${python} -m smop.bin.validate_data_dir "data/${d}"
  done
fi

write_shapes() {  # <config>: shape files and token statistics of the training and validation sets
  local shapes
  shapes=dump/shapes/$(tag_of "$1")
  ${python} -m smop.bin.write_shapes --train_config "$1" --data_dir "data/${train_set}" "data/${valid_set}" \
    --output_dir "${shapes}/${train_set}" "${shapes}/${valid_set}"
}

# ========================================================================================= 2
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  for config in ${train_configs}; do
    log "Stage 2: Shapes and token statistics: data/{${train_set},${valid_set}} -> dump/shapes/$(tag_of "${config}")"
    write_shapes "${config}"
  done
fi

# ========================================================================================= 3
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  for config in ${train_configs}; do
    tag=$(tag_of "${config}")
    exp=exp/${tag}
    modality=$(modality_of "${config}")
    shapes=dump/shapes/${tag}
    if [ ! -f "${shapes}/${train_set}/frames_shape" ] || [ ! -f "${shapes}/${valid_set}/frames_shape" ]; then
      log "No shapes for ${config} yet (a config added after stage 2): data/{${train_set},${valid_set}} -> ${shapes}"
      write_shapes "${config}"
    fi
    log "Stage 3: Training (${modality}): ${config} -> ${exp}"
    mkdir -p "${exp}"
    noise_opt=()
    [ -n "${noise_file}" ] && noise_opt=(--preprocessor_conf "noise_file=${noise_file}")
    # Options are word-split on purpose (data_args, train_args).
    # shellcheck disable=SC2206,SC2207
    cmd=(${python} -m espnet2.bin.launch --cmd "${cuda_cmd} --name ${tag}" --log "${exp}/train.log"
      --ngpu "${ngpu}" --num_nodes "${num_nodes}" --init_file_prefix "${exp}/.dist_init_"
      --multiprocessing_distributed true --
      ${python} -m smop.bin.avsr_train --config "${config}" --output_dir "${exp}" --resume true
      $(data_args "${config}" "${train_set}" train_ --text) $(data_args "${config}" "${valid_set}" valid_ --text)
      --train_shape_file "${shapes}/${train_set}/frames_shape" --valid_shape_file "${shapes}/${valid_set}/frames_shape"
      "${noise_opt[@]}" ${train_args})
    printf '#!/usr/bin/env bash\n# Re-runs stage 3 for this experiment (resumes from its last checkpoint).\ncd %q\n. ./path.sh\n%s "$@"\n' \
      "$(pwd)" "$(printf '%q ' "${cmd[@]}")" > "${exp}/run.sh"
    chmod +x "${exp}/run.sh"
    log "Training log: ${exp}/train.log (replay: ${exp}/run.sh)"
    if ! "${cmd[@]}"; then
      if [ -f "${exp}/train.log" ]; then
        log "Error: training failed; the end of ${exp}/train.log:"
        tail -n 30 "${exp}/train.log" >&2
      else
        log "Error: training did not start (no ${exp}/train.log; the job runner's message is above)"
      fi
      exit 1
    fi
  done
fi

# ========================================================================================= 4
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  decode_tag=decode_$(tag_of "${decode_config}")
  _ngpu=0; [ "${ngpu}" -gt 0 ] && _ngpu=1
  for config in ${train_configs}; do
    tag=$(tag_of "${config}")
    exp=exp/${tag}
    [ -e "${exp}/${inference_model}" ] || { log "Error: ${exp}/${inference_model} not found: run stage 3"; exit 1; }
    # One process per job decodes its share of every test set: the model and the libraries load
    # once per job, not once per set and job (start-up is ~15 s of a mini-corpus set's ~30 s).
    _nj=${nj}
    for d in ${eval_sets}; do
      n_utt=$(wc -l < "data/${d}/text")
      [ "${n_utt}" -ge "${_nj}" ] || _nj=${n_utt}
    done
    logdir=${exp}/${decode_tag}/logdir
    rm -rf "${logdir}"
    mkdir -p "${logdir}"
    set_args=""
    for d in ${eval_sets}; do
      rm -rf "${exp}/${decode_tag}/${d}/logdir"
      mkdir -p "${exp}/${decode_tag}/${d}/logdir"
      ${python} -m smop.bin.split_keys --keys "data/${d}/text" --nj "${_nj}" --out_prefix "${exp}/${decode_tag}/${d}/logdir/keys"
      set_args+=" $(data_args "${config}" "${d}" "") --key_file ${exp}/${decode_tag}/${d}/logdir/keys.JOB.scp"
      set_args+=" --output_dir ${exp}/${decode_tag}/${d}/logdir/output.JOB"
    done
    log "Stage 4: Decoding: ${eval_sets} -> ${exp}/${decode_tag} (${_nj} jobs; logs: ${logdir}/decode.*.log)"
    # Jobs that share the cores each get their share: more threads than cores slow every job down.
    _threads=${decode_threads:-$(( $(nproc) / _nj ))}; [ "${_threads}" -ge 1 ] || _threads=1
    # shellcheck disable=SC2046,SC2086
    if ! OMP_NUM_THREADS=${_threads} ${decode_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${logdir}/decode.JOB.log" \
        ${python} -m smop.bin.avsr_inference --config "${decode_config}" --ngpu "${_ngpu}" ${set_args} \
          --train_config "${exp}/config.yaml" --model_file "${exp}/${inference_model}" ${decode_args}; then
      log "Error: decoding failed; see ${logdir}/decode.*.log"
      exit 1
    fi
    for d in ${eval_sets}; do
      dir=${exp}/${decode_tag}/${d}
      ${python} -m smop.bin.merge_decodes --keys "data/${d}/text" --nj "${_nj}" --logdir "${dir}/logdir" \
        --output_dir "${dir}" --job_log "${logdir}/decode.JOB.log"
    done
  done
fi

# ========================================================================================= 5
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  decode_tag=decode_$(tag_of "${decode_config}")
  exp_dirs=()
  for config in ${train_configs}; do
    exp=exp/$(tag_of "${config}")
    exp_dirs+=("${exp}")
    for d in ${eval_sets}; do
      dir=${exp}/${decode_tag}/${d}
      log "Stage 5: Scoring: ${dir} -> ${dir}/score_wer"
      ${python} -m smop.bin.score_wer --ref "data/${d}/text" --hyp "${dir}/text" --utt2spk "data/${d}/utt2spk" \
        --output_dir "${dir}/score_wer"
    done
    ${python} -m smop.bin.plot_expert_usage "${exp}" --decode_tag "${decode_tag}"
  done
  # shellcheck disable=SC2086
  ${python} -m smop.bin.make_results --exp_dirs "${exp_dirs[@]}" --decode_tag "${decode_tag}" \
    --sets ${eval_sets} --command "${run_args}" --output RESULTS.md
  log "Results: $(pwd)/RESULTS.md"
fi

# ========================================================================================= 6
if [ "${stage}" -le 6 ] && [ "${stop_stage}" -ge 6 ]; then
  decode_tag=decode_$(tag_of "${decode_config}")
  for config in ${train_configs}; do
    exp=exp/$(tag_of "${config}")
    log "Stage 6: Packing: ${exp}/${inference_model} -> ${exp}/pack (load: smop.Speech2Text.from_pretrained, smop-transcribe)"
    # The card shows the decoding's results and the pack keeps its settings; not decoded yet: decode_config's.
    decoded=(--decode_tag "${decode_tag}")
    [ -d "${exp}/${decode_tag}" ] || decoded=(--decode_config "${decode_config}")
    # shellcheck disable=SC2086
    ${python} -m smop.bin.pack_model --exp_dir "${exp}" --out_dir "${exp}/pack" --inference_model "${inference_model}" \
      "${decoded[@]}" ${pack_args}
  done
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
