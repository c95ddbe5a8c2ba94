#!/usr/bin/env bash
# shellcheck disable=SC1091,SC2154  # path.sh, cmd.sh (train/decode commands) come from the recipe
# Llama-SMoP recipe stages, shared by every corpus (called by each recipe's run.sh).
#
#   0. Data preparation              local/data.sh -> data/<set>; noisy copies of every test set
#   1. Pretrained models             local/prepare_models.sh -> pretrained/ (may train on data/)
#   2. Shapes and token statistics   data/<set> -> dump/shapes/<config name>/<set>
#   3. Training                      conf/train_*.yaml -> exp/<config name> (replay: exp/<config name>/run.sh)
#   4. Decoding                      exp/<config name>/<decode tag>/<test set> (replay: .../<decode tag>/run.sh);
#                                    the tag names the decoding config and the checkpoint: decode_<config>_<model>
#   5. Scoring and RESULTS.md        sclite + jiwer, expert usage plot, RESULTS.md
#   6. Packing                       exp/<config name>/pack: a relocatable model with its model card
# Skip groups: --skip_data_prep (0), --skip_train (1-3), --skip_eval (4-5), --skip_packing (6).
set -euo pipefail
. utils/log.sh
SECONDS=0

# General
stage=0              # first stage to run
stop_stage=6         # last stage to run
skip_data_prep=false # skip stage 0 (data preparation)
skip_train=false     # skip stages 1-3 (pretrained models, shapes, training)
skip_eval=false      # skip stages 4-5 (decoding, scoring)
skip_packing=false   # skip stage 6 (packing; without decoding, the pack takes decode_config's settings)
nj=4                 # parallel jobs for data preparation and decoding
ngpu=0               # GPUs for training (decoding uses one GPU when ngpu > 0)
num_nodes=1          # nodes for training (with slurm)
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
seeds=               # train each config with these seeds (e.g. "0 1 2"): exp/<config>_seed<N>, spread in RESULTS.md
# Decoding
decode_config=conf/decode.yaml
decode_args=         # extra options for smop.bin.avsr_inference
inference_model=valid.loss.ave.pth  # which checkpoint to decode with
inference_tag=       # decoding dir under exp/<config name> (default: decode_<decode config>_<inference model>)
decode_noisy=true    # also decode the noisy copies of the test sets
decode_threads=      # CPU threads per decoding job (default: this machine's cores / jobs, at least 1)
# Packing
pack_args=           # extra options for smop.bin.pack_model (e.g. --copy_pretrained all, --hub_id <you>/<name>)

usage() {  # printed by --help after the options are parsed: the values of this call (run.sh's)
  cat << HELP_END
Usage: $0 [options]   (the stages are listed at the top of avsr.sh; python3 is tools/venv's, see path.sh)

Options (with the values of this call):
  --stage          # first stage (${stage})
  --stop_stage     # last stage (${stop_stage})
  --skip_data_prep # skip stage 0, data preparation (${skip_data_prep})
  --skip_train     # skip stages 1-3, pretrained models, shapes and training (${skip_train})
  --skip_eval      # skip stages 4-5, decoding and scoring (${skip_eval})
  --skip_packing   # skip stage 6, packing (${skip_packing})
  --nj             # parallel jobs for data prep and decoding (${nj})
  --ngpu           # GPUs for training (${ngpu})
  --num_nodes      # nodes for training (${num_nodes})
  --train_set      # (${train_set})
  --valid_set      # (${valid_set})
  --test_sets      # ("${test_sets}")
  --noise_file     # babble noise wav ("${noise_file}")
  --noise_snrs     # SNRs of the noisy test sets ("${noise_snrs}")
  --noise_seed     # (${noise_seed})
  --data_prep_args   # extra options for local/data.sh ("${data_prep_args}")
  --model_prep_args  # extra options for local/prepare_models.sh ("${model_prep_args}")
  --train_configs  # training configs, each trained in exp/<config name> ("${train_configs}")
  --train_config   # one training config, overrides --train_configs ("${train_config}")
  --train_args     # extra training options ("${train_args}")
  --seeds          # seeds to train each config with ("${seeds}"; empty: the config's own seed)
  --decode_config  # (${decode_config})
  --decode_args    # extra decoding options ("${decode_args}")
  --inference_model  # checkpoint to decode with (${inference_model})
  --inference_tag  # decoding dir under exp/<config> ("${inference_tag}"; empty: decode_<decode config>_<model>)
  --decode_noisy   # decode the noisy test sets too (${decode_noisy})
  --decode_threads # CPU threads per decoding job ("${decode_threads}"; empty: cores / jobs)
  --pack_args      # extra options for smop.bin.pack_model ("${pack_args}")
HELP_END
}

log "$0 $*"
run_args=$(printf "%q " "$0" "$@")
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  usage >&2
  log "Error: no positional arguments are required (got: $*)."
  exit 2
fi
. ./path.sh
. ./cmd.sh
if ! python3 -c "import importlib.util as u, sys; sys.exit(not (u.find_spec('smop') and u.find_spec('espnet2')))" 2>/dev/null; then
  log "smop or espnet2 is not installed for $(command -v python3 || echo python3): running tools/install.sh"
  "${SMOP_ROOT}/tools/install.sh"
  . ./path.sh  # activates the new tools/venv
fi

[ -n "${train_config}" ] && train_configs="${train_config}"
skip_stages=""
"${skip_data_prep}" && skip_stages+=" 0"
"${skip_train}" && skip_stages+=" 1 2 3"
"${skip_eval}" && skip_stages+=" 4 5"
"${skip_packing}" && skip_stages+=" 6"
run_stage() {  # <N> <what>: true when stage N is in --stage..--stop_stage and not in a skipped group
  [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] || return 1
  if [[ " ${skip_stages} " == *" $1 "* ]]; then
    log "Skip stage $1: $2"
    return 1
  fi
}
# Every set the recipe scores: each clean test set and its noisy copies, named <set>_snr<dB> as
# smop.experiment.NOISY_SET reads them (results tables, expert usage, packs).
eval_sets=""
for t in ${test_sets}; do
  eval_sets+="${t} "
  if "${decode_noisy}" && [ -n "${noise_file}" ]; then for snr in ${noise_snrs}; do eval_sets+="${t}_snr${snr} "; done; fi
done

tag_of() { basename "${1%.*}"; }
runs_of() {  # <config>: one line per run, its folder then its training options (--seeds: one per seed)
  if [ -z "${seeds}" ]; then echo "exp/$(tag_of "$1")"; return; fi
  # shellcheck disable=SC2086
  python3 -m smop.bin.seed_run --config "$1" --seeds ${seeds}
}
# Stages 4-6 share the decoding dir; its name tells both choices apart, so decoding another
# checkpoint (--inference_model 1epoch.pth) does not overwrite the results of the last one.
_model=${inference_model%.pth}
decode_tag=${inference_tag:-decode_$(tag_of "${decode_config}")_${_model//\//_}}
modality_of() { python3 -m smop.bin.data_args --config "$1" --modality_only; }
sets_for() {  # <modality>: the sets it decodes; a video-only model reads no audio, so not the noisy copies
  if [ "$1" = video ]; then echo "${test_sets}"; else echo "${eval_sets}"; fi
}
# <config>: one line per cell of the grid its model decodes: the suffix of the cell's decoding dir
# (- for the default cell, decoded into the plain dir that stages 5-6 read), its modality and its
# avsr_inference options. A fixed-rate model has one cell; an elastic one (issue 21) each modality
# at each rate pair, in <decode dir>_<modality>_a<audio rate>_v<video rate>.
cells_of() { python3 -m smop.bin.data_args --config "$1" --cells; }
cell_dir() { if [ "$1" = - ]; then echo "${decode_tag}"; else echo "${decode_tag}_$1"; fi; }  # <cell suffix>
data_args() {  # <config> <set> <prefix> [--text]: the --*data_path_and_name_and_type options of its modality
  python3 -m smop.bin.data_args --config "$1" --data_dir "data/$2" --prefix "$3" "${@:4}"
}

# Stage 1's inputs (the pretrained models named in db.sh) are checked now when stage 0 runs
# first: a missing model should not wait for hours of data preparation.
if [ "${stage}" -le 0 ] && [ "${stop_stage}" -ge 1 ] && [[ " ${skip_stages} " != *" 1 "* ]]; then
  # shellcheck disable=SC2086
  local/prepare_models.sh --check_only true ${model_prep_args} || exit 1
fi

# ========================================================================================= 0
if run_stage 0 "data preparation (--skip_data_prep)"; then
  log "Stage 0: Data preparation: local/data.sh -> data/{${train_set},${valid_set},${test_sets// /,}}"
  # shellcheck disable=SC2086
  local/data.sh --nj "${nj}" ${data_prep_args}
  if [ -n "${noise_file}" ]; then
    [ -f "${noise_file}" ] || { log "Error: noise file ${noise_file} not found (see db.sh)"; exit 1; }
    for t in ${test_sets}; do
      for snr in ${noise_snrs}; do
        log "Noisy copy: data/${t} + babble at ${snr} dB -> data/${t}_snr${snr}"
        python3 -m smop.bin.make_noisy_set --src "data/${t}" --dst "data/${t}_snr${snr}" \
          --media_dir "dump/media/${t}_snr${snr}" --noise "${noise_file}" --snr "${snr}" --seed "${noise_seed}"
      done
    done
  fi
  for d in "${train_set}" "${valid_set}" ${eval_sets}; do
    python3 -m smop.bin.validate_data_dir "data/${d}"
  done
fi

# ========================================================================================= 1
if run_stage 1 "pretrained models (--skip_train)"; then
  # After the data: a recipe may pretrain its models on it (the mini recipe does).
  log "Stage 1: Pretrained models: local/prepare_models.sh -> pretrained/"
  # shellcheck disable=SC2086
  local/prepare_models.sh ${model_prep_args}
fi

write_shapes() {  # <config>: shape files and token statistics of the training and validation sets
  local shapes
  shapes=dump/shapes/$(tag_of "$1")
  python3 -m smop.bin.write_shapes --train_config "$1" --data_dir "data/${train_set}" "data/${valid_set}" \
    --output_dir "${shapes}/${train_set}" "${shapes}/${valid_set}"
}

# ========================================================================================= 2
if run_stage 2 "shapes and token statistics (--skip_train)"; then
  for config in ${train_configs}; do
    log "Stage 2: Shapes and token statistics: data/{${train_set},${valid_set}} -> dump/shapes/$(tag_of "${config}")"
    write_shapes "${config}"
  done
fi

# ========================================================================================= 3
if run_stage 3 "training (--skip_train)"; then
  for config in ${train_configs}; do
    shapes=dump/shapes/$(tag_of "${config}")
    # Each run of the config (one per seed with --seeds); fd 3, as the training reads stdin.
    while read -r exp seed_args <&3; do
      tag=$(basename "${exp}")
      modality=$(modality_of "${config}")
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
      cmd=(python3 -m espnet2.bin.launch --cmd "${cuda_cmd} --name ${tag}" --log "${exp}/train.log"
        --ngpu "${ngpu}" --num_nodes "${num_nodes}" --init_file_prefix "${exp}/.dist_init_"
        --multiprocessing_distributed true --
        python3 -m smop.bin.avsr_train --config "${config}" --output_dir "${exp}" --resume true
        $(data_args "${config}" "${train_set}" train_ --text) $(data_args "${config}" "${valid_set}" valid_ --text)
        --train_shape_file "${shapes}/${train_set}/frames_shape" --valid_shape_file "${shapes}/${valid_set}/frames_shape"
        "${noise_opt[@]}" ${seed_args} ${train_args})
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
    done 3< <(runs_of "${config}")
  done
fi

# ========================================================================================= 4
if run_stage 4 "decoding (--skip_eval)"; then
  _ngpu=0; [ "${ngpu}" -gt 0 ] && _ngpu=1
  for config in ${train_configs}; do
    while read -r exp _ <&3; do  # each run of the config (--seeds)
      [ -e "${exp}/${inference_model}" ] || { log "Error: ${exp}/${inference_model} not found: run stage 3"; exit 1; }
      # Each cell of the model's grid (fd 4): one, or an elastic model's modalities and rate pairs.
      while read -r cell cell_modality cell_args <&4; do
        tag=$(cell_dir "${cell}")
        sets=$(sets_for "${cell_modality}")
        # One process per job decodes its share of every test set: the model and the libraries load
        # once per job, not once per set and job (start-up is ~15 s of a mini-corpus set's ~30 s).
        _nj=${nj}
        for d in ${sets}; do
          n_utt=$(wc -l < "data/${d}/text")
          [ "${n_utt}" -ge "${_nj}" ] || _nj=${n_utt}
        done
        logdir=${exp}/${tag}/logdir
        rm -rf "${logdir}"
        mkdir -p "${logdir}"
        set_args=""
        for d in ${sets}; do
          rm -rf "${exp}/${tag}/${d}/logdir"
          mkdir -p "${exp}/${tag}/${d}/logdir"
          python3 -m smop.bin.split_keys --keys "data/${d}/text" --nj "${_nj}" --out_prefix "${exp}/${tag}/${d}/logdir/keys"
          set_args+=" $(data_args "${config}" "${d}" "" --modality "${cell_modality}") --key_file ${exp}/${tag}/${d}/logdir/keys.JOB.scp"
          set_args+=" --output_dir ${exp}/${tag}/${d}/logdir/output.JOB"
        done
        # The replay decodes this experiment again: this call's options, then the ones given to it.
        printf '#!/usr/bin/env bash\n# Re-runs stage 4 (decoding) for this experiment; options given here are added last (they win).\ncd %q\n%s"$@"\n' \
          "$(pwd)" "${run_args}$(printf '%q ' --stage 4 --stop_stage 4 --train_config "${config}" \
            --decode_config "${decode_config}" --inference_model "${inference_model}")" > "${exp}/${tag}/run.sh"
        chmod +x "${exp}/${tag}/run.sh"
        log "Stage 4: Decoding${cell_args:+ (${cell_args})}: ${sets} -> ${exp}/${tag} (${_nj} jobs; logs: ${logdir}/decode.*.log; replay: ${exp}/${tag}/run.sh)"
        # Jobs that share the cores each get their share: more threads than cores slow every job down.
        _threads=${decode_threads:-$(( $(nproc) / _nj ))}; [ "${_threads}" -ge 1 ] || _threads=1
        # shellcheck disable=SC2046,SC2086
        if ! OMP_NUM_THREADS=${_threads} ${decode_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${logdir}/decode.JOB.log" \
            python3 -m smop.bin.avsr_inference --config "${decode_config}" --ngpu "${_ngpu}" ${set_args} \
              --train_config "${exp}/config.yaml" --model_file "${exp}/${inference_model}" ${cell_args} ${decode_args}; then
          log "Error: decoding failed; see ${logdir}/decode.*.log"
          exit 1
        fi
        for d in ${sets}; do
          dir=${exp}/${tag}/${d}
          python3 -m smop.bin.merge_decodes --keys "data/${d}/text" --nj "${_nj}" --logdir "${dir}/logdir" \
            --output_dir "${dir}" --job_log "${logdir}/decode.JOB.log"
        done
      done 4< <(cells_of "${config}")
    done 3< <(runs_of "${config}")
  done
fi

# ========================================================================================= 5
if run_stage 5 "scoring (--skip_eval)"; then
  exp_dirs=()
  seed_runs=()
  for config in ${train_configs}; do
    exp_dirs+=("exp/$(tag_of "${config}")")  # the config's own seed: its tables, as without --seeds
    while read -r exp _ <&3; do
      seed_runs+=("${exp}")
      while read -r cell cell_modality _ <&4; do  # each cell of the model's grid (stage 4)
        tag=$(cell_dir "${cell}")
        for d in $(sets_for "${cell_modality}"); do
          dir=${exp}/${tag}/${d}
          log "Stage 5: Scoring: ${dir} -> ${dir}/score_wer"
          python3 -m smop.bin.score_wer --ref "data/${d}/text" --hyp "${dir}/text" --utt2spk "data/${d}/utt2spk" \
            --output_dir "${dir}/score_wer"
        done
      done 4< <(cells_of "${config}")
      # The default cell's (an elastic model's others would overwrite exp/expert_usage.png).
      python3 -m smop.bin.plot_expert_usage "${exp}" --decode_tag "${decode_tag}"
    done 3< <(runs_of "${config}")
  done
  spread=()  # with --seeds: mean and range over every run
  [ -z "${seeds}" ] || spread=(--seed_runs "${seed_runs[@]}")
  # shellcheck disable=SC2086
  python3 -m smop.bin.make_results --exp_dirs "${exp_dirs[@]}" --decode_tag "${decode_tag}" \
    --sets ${eval_sets} --command "${run_args}" --output RESULTS.md "${spread[@]}"
  log "Results: $(pwd)/RESULTS.md"
fi

# ========================================================================================= 6
if run_stage 6 "packing (--skip_packing)"; then
  for config in ${train_configs}; do
    exp=exp/$(tag_of "${config}")  # the config's own seed (with --seeds, the other runs are not packed)
    log "Stage 6: Packing: ${exp}/${inference_model} -> ${exp}/pack (load: smop.Speech2Text.from_pretrained, smop-transcribe)"
    # The card shows the decoding's results and the pack keeps its settings; not decoded yet: decode_config's.
    decoded=(--decode_tag "${decode_tag}")
    [ -d "${exp}/${decode_tag}" ] || decoded=(--decode_config "${decode_config}")
    # shellcheck disable=SC2086
    python3 -m smop.bin.pack_model --exp_dir "${exp}" --out_dir "${exp}/pack" --inference_model "${inference_model}" \
      "${decoded[@]}" ${pack_args}
  done
fi

log "Successfully finished. [elapsed=${SECONDS}s]"
