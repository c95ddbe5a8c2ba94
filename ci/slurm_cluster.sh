#!/usr/bin/env bash
# A real Slurm cluster on this one machine, for the tests of the recipes' cmd_backend=slurm:
# Debian's slurm-wlm and munge, one slurmctld and two slurmd daemons (nodes smop1 and smop2, one
# CPU each, so that a --nodes=2 job really runs on two nodes), partitions "cpu" and "gpu" as the
# recipes' conf/slurm.conf names them. Every file (config, keys, sockets, state, logs) lives
# under DIR; the daemons listen on free ports. Needs root (slurmd starts jobs as their users).
#
#   ci/slurm_cluster.sh start DIR   # then: export SLURM_CONF=DIR/slurm.conf
#   ci/slurm_cluster.sh stop DIR    # cancels the jobs left, stops the daemons
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
nodes="smop1 smop2"
export SLURM_CONF=${dir}/slurm.conf

die() { echo "$0: $*" >&2; exit 1; }

stop_pid_file() {  # <pid file>: TERM the daemon it names, KILL it after 10 s
  local f=$1 pid
  [ -f "${f}" ] || return 0
  pid=$(cat "${f}")
  if kill "${pid}" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.2; done
    kill -9 "${pid}" 2>/dev/null || true
  fi
  rm -f "${f}"
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

start() {
  [ "$(id -u)" = 0 ] || die "needs root (slurmd runs jobs as their submitting user)"
  for bin in munged munge slurmctld slurmd sbatch srun; do
    command -v "${bin}" >/dev/null 2>&1 || [ -x "/usr/sbin/${bin}" ] \
      || die "${bin} not found: apt-get install slurm-wlm munge (tools/install.sh does it as root)"
  done
  [ -f "${dir}/slurmctld.pid" ] && die "a cluster already runs from ${dir} (stop it first)"
  # munged checks that every directory above its socket can be traversed by all users.
  chmod 755 "${dir}"
  mkdir -p "${dir}/munge" "${dir}/state"
  chmod 755 "${dir}/munge"
  if [ ! -f "${dir}/munge/munge.key" ]; then
    dd if=/dev/urandom of="${dir}/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "${dir}/munge/munge.key"
  fi
  PATH=${PATH}:/usr/sbin munged --socket="${dir}/munge/munge.socket" --key-file="${dir}/munge/munge.key" \
    --log-file="${dir}/munge/munged.log" --pid-file="${dir}/munge/munged.pid" --seed-file="${dir}/munge/munged.seed" \
    || die "munged did not start: $(tail -n 3 "${dir}/munge/munged.log" 2>/dev/null)"

  local host mem node port
  host=$(hostname)
  # Each node gets half of the memory (slurmd drains a node that claims more than the machine has).
  mem=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)
  {
    echo "# Written by $0: a two-node test cluster on ${host}"
    echo "ClusterName=smoptest"
    echo "SlurmctldHost=${host}(127.0.0.1)"
    echo "SlurmctldPort=$(free_port)"
    echo "AuthType=auth/munge"
    echo "CredType=cred/munge"
    echo "AuthInfo=socket=${dir}/munge/munge.socket"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    # No cgroups inside a container: plain process tracking, no task binding.
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "MpiDefault=none"
    # Cores are allocated, memory is not (CR_Core_Memory would give each job a whole node's memory).
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobCompType=jobcomp/none"
    echo "ReturnToService=2"
    echo "StateSaveLocation=${dir}/state"
    echo "SlurmctldPidFile=${dir}/slurmctld.pid"
    echo "SlurmctldLogFile=${dir}/slurmctld.log"
    echo "SlurmdSpoolDir=${dir}/spool.%n"
    echo "SlurmdPidFile=${dir}/slurmd.%n.pid"
    echo "SlurmdLogFile=${dir}/slurmd.%n.log"
    for node in ${nodes}; do
      port=$(free_port)
      echo "NodeName=${node} NodeHostname=${host} NodeAddr=127.0.0.1 Port=${port} CPUs=1 RealMemory=${mem} State=UNKNOWN"
    done
    echo "PartitionName=cpu Nodes=${nodes// /,} Default=YES MaxTime=INFINITE State=UP"
    echo "PartitionName=gpu Nodes=${nodes// /,} MaxTime=INFINITE State=UP"
  } > "${SLURM_CONF}"

  PATH=${PATH}:/usr/sbin slurmctld -f "${SLURM_CONF}" -i \
    || die "slurmctld did not start: $(tail -n 5 "${dir}/slurmctld.log" 2>/dev/null)"
  for node in ${nodes}; do
    PATH=${PATH}:/usr/sbin slurmd -f "${SLURM_CONF}" -N "${node}" \
      || die "slurmd ${node} did not start: $(tail -n 5 "${dir}/slurmd.${node}.log" 2>/dev/null)"
  done
  local idle
  for _ in $(seq 60); do
    idle=$(sinfo -h -N -p cpu -o '%N %T' 2>/dev/null | grep -c ' idle$' || true)
    [ "${idle}" = 2 ] && break
    sleep 0.5
  done
  [ "${idle}" = 2 ] || die "the nodes did not come up: $(sinfo -N 2>&1); $(tail -n 5 "${dir}"/slurmd.*.log)"
  echo "export SLURM_CONF=${SLURM_CONF}"
}

stop() {
  local jobs
  if [ -f "${dir}/slurmctld.pid" ]; then
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [ -n "${jobs}" ]; then
      # shellcheck disable=SC2086
      scancel ${jobs} 2>/dev/null || true
      for _ in $(seq 50); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.2; done
    fi
  fi
  for node in ${nodes}; do stop_pid_file "${dir}/slurmd.${node}.pid"; done
  stop_pid_file "${dir}/slurmctld.pid"
  stop_pid_file "${dir}/munge/munged.pid"
}

case "${action}" in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
