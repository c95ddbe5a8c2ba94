#!/usr/bin/env bash
# The test command of README.md (and of CI): install what is needed, then run the tests.
# Usage: ci/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
tools/venv/bin/python -m pytest -q "$@"
