#!/usr/bin/env bash
# Checks MEAN_FACE (db.sh): the official reference face that the LRS3 mouth crops are aligned to.
# Usage: local/check_mean_face.sh <path>
set -euo pipefail
log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') ($0:${BASH_LINENO[0]}) $*"; }

where="  Get 20words_mean_face.npy from auto_avsr (https://github.com/mpc001/auto_avsr, preparation/detectors/retinaface/,
  Apache-2.0) or from mpc001/Lipreading_using_Temporal_Convolutional_Networks (preprocessing/, the link in AV-HuBERT's
  avhubert/preparation/align_mouth.py), and set MEAN_FACE in db.sh to its path."
if [ -z "${1:-}" ]; then
  log "Error: MEAN_FACE is empty in db.sh: the mouth crops need the official reference face.\n${where}"; exit 1
fi
check='
import sys
from smop.data.errors import DataError
from smop.data.mouth_roi import load_reference_face
try:
    load_reference_face(sys.argv[1])
except DataError as e:
    sys.exit(str(e))'
if ! msg=$(python3 -c "${check}" "$1" 2>&1); then
  log "Error: MEAN_FACE: ${msg}\n${where}"; exit 1
fi
log "MEAN_FACE ${1} is a reference face"
