#!/usr/bin/env bash
# Checks the reference face that the LRS3 mouth crops are aligned to (MEAN_FACE in db.sh): the
# official 20words_mean_face.npy, (68, 2) landmarks.
set -euo pipefail
. utils/log.sh

usage() {
  cat << HELP_END
Usage: $0 <mean face .npy>
  e.g. $0 "\${MEAN_FACE}"   (an empty path says where to get the file)
HELP_END
}

. utils/parse_options.sh
if [ $# -ne 1 ]; then usage >&2; log "Error: one argument, the path of the mean face (got $#)."; exit 2; fi
mean_face=$1
. ./path.sh

where="  Get 20words_mean_face.npy from auto_avsr (https://github.com/mpc001/auto_avsr, preparation/detectors/retinaface/,
  Apache-2.0) or from mpc001/Lipreading_using_Temporal_Convolutional_Networks (preprocessing/, the link in AV-HuBERT's
  avhubert/preparation/align_mouth.py), and set MEAN_FACE in db.sh to its path."
if [ -z "${mean_face}" ]; then
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
if ! msg=$(python3 -c "${check}" "${mean_face}" 2>&1); then
  log "Error: MEAN_FACE: ${msg}\n${where}"; exit 1
fi
log "MEAN_FACE ${mean_face} is a reference face"
