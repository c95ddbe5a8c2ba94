# shellcheck shell=bash
# Job runners (Kaldi/ESPnet convention). Choose the backend for this machine:
#   local: run on this machine (utils/run.pl)
#   slurm: submit with sbatch (utils/slurm.pl; partitions and flags in conf/slurm.conf)
cmd_backend=${cmd_backend:-local}

if [ "${cmd_backend}" = local ]; then
  export train_cmd="utils/run.pl"
  export cuda_cmd="utils/run.pl"
  export decode_cmd="utils/run.pl"
elif [ "${cmd_backend}" = slurm ]; then
  # Said now, not when the first job is submitted after hours of data preparation.
  if ! command -v sbatch > /dev/null; then
    echo "$0: cmd_backend=slurm but sbatch is not on PATH: install Slurm's client (Debian/Ubuntu: apt-get install slurm-client) or use cmd_backend=local" 1>&2
    return 1
  fi
  export train_cmd="utils/slurm.pl --config conf/slurm.conf"
  export cuda_cmd="utils/slurm.pl --config conf/slurm.conf"
  export decode_cmd="utils/slurm.pl --config conf/slurm.conf"
else
  echo "$0: unknown cmd_backend=${cmd_backend} (local or slurm)" 1>&2
  return 1
fi
