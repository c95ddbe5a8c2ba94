# shellcheck shell=bash
# The logging function of every recipe script (avsr.sh, local/*.sh), sourced after strict mode:
# a timestamp, the calling file, line and function, then the message.
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
