# shellcheck shell=bash
# Environment of a smop recipe: sourced by run.sh and every stage.
# The root is found from this file's real place (egs/TEMPLATE/avsr_smop), whatever links lead here:
# a recipe's path.sh, or a work directory elsewhere whose files link to a recipe's (ci/test.sh).
SMOP_ROOT=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../.." && pwd)
export SMOP_ROOT
# python3 is then tools/venv's interpreter: every recipe script calls python3.
if [ -f "${SMOP_ROOT}/tools/venv/bin/activate" ]; then
  # shellcheck disable=SC1091
  . "${SMOP_ROOT}/tools/venv/bin/activate"
fi
# sclite from SCTK: Debian installs it outside PATH.
export PATH="${SMOP_ROOT}/tools/sctk/bin:/usr/lib/sctk/bin:${PATH}"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# Pretrained models come from local directories or the HF cache only.
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export NCCL_SOCKET_IFNAME=${NCCL_SOCKET_IFNAME:-"^lo,docker,virbr,vmnet,vboxnet"}
