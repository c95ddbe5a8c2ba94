#!/usr/bin/env bash
# Create tools/venv with smop and its pinned dependencies; idempotent.
# Usage: tools/install.sh [--system-packages true|false] [--python python3.11] [--extra landmarks]
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }

system_packages=auto   # install the Debian packages below with apt-get (auto: when root)
python=python3.11      # interpreter for the venv
extras="test"          # setup.py extras; --extra landmarks adds dlib (face landmarks from raw video)

while [ $# -gt 0 ]; do
  case "$1" in
    --system-packages) system_packages="$2"; shift 2 ;;
    --python) python="$2"; shift 2 ;;
    --extra) extras+=",$2"; shift 2 ;;
    -h|--help) sed -n '2,3p' "$0"; exit 0 ;;
    *) echo "$0: unknown option $1" >&2; exit 2 ;;
  esac
done

tools_dir=$(cd "$(dirname "$0")" && pwd)
root_dir=$(dirname "${tools_dir}")
venv="${tools_dir}/venv"

if ! command -v "${python}" >/dev/null 2>&1; then
  python=python3
fi
"${python}" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "$0: smop needs Python 3.11 (espnet 202511 is the newest release for it)" >&2; exit 1; }

# 1. Debian packages the recipes call: sox (audio), ffmpeg (mp4), sctk (sclite), espeak-ng (mini corpus);
#    and for the tests: the script linter, and Slurm with munge (ci/slurm_cluster.sh starts a
#    two-node test cluster on this machine; the recipes' cmd_backend=slurm is tested against it).
need_apt=()
for pair in sox:sox ffmpeg:ffmpeg espeak-ng:espeak-ng /usr/lib/sctk/bin/sclite:sctk shellcheck:shellcheck \
    /usr/sbin/slurmd:slurm-wlm /usr/sbin/munged:munge; do
  bin=${pair%%:*}; pkg=${pair##*:}
  if ! command -v "${bin}" >/dev/null 2>&1 && [ ! -x "${bin}" ]; then need_apt+=("${pkg}"); fi
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "${system_packages}" = true ] || { [ "${system_packages}" = auto ] && [ "$(id -u)" = 0 ]; }; then
    log "apt-get install ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  else
    log "WARNING: missing Debian packages: ${need_apt[*]} (run as root or: sudo apt-get install ${need_apt[*]})"
  fi
fi

# 2. The venv. A stamp of the pins and the extras installed with them makes re-runs cheap; it
#    re-installs when setup.py changes or an extra is asked for that is not there yet.
stamp="${venv}/.smop_installed"
want=$(sha256sum "${root_dir}/setup.py" | cut -d' ' -f1)
have="" have_extras=""
if [ -f "${stamp}" ]; then read -r have have_extras < "${stamp}" || true; fi
extras=$(tr ',' '\n' <<< "${extras},${have_extras}" | sed '/^$/d' | sort -u | paste -sd, -)
if [ "${have}" = "${want}" ] && [ "${have_extras}" = "${extras}" ]; then
  log "tools/venv is up to date (extras: ${extras})"
else
  [ -x "${venv}/bin/python" ] || { log "creating ${venv}"; "${python}" -m venv "${venv}"; }
  # The machine-wide pip constraint caps torch at the wheels on disk; our pins are below that cap.
  "${venv}/bin/pip" install -q --upgrade "pip>=24,<25" "setuptools<74" wheel
  # torch first, so that no other requirement pulls a different build.
  "${venv}/bin/pip" install -q "torch==2.11.0" "torchaudio==2.11.0"
  "${venv}/bin/pip" install -q -e "${root_dir}[${extras}]"
  "${venv}/bin/pip" check
  echo "${want} ${extras}" > "${stamp}"
fi

# 3. Verify the pins (ESPnet's check_install.py style): report N / M and fail on a mismatch.
"${venv}/bin/python" - <<'PY'
import importlib.metadata as md, sys
want = {"espnet": "202511", "torch": "2.11.0", "torchaudio": "2.11.0", "transformers": "5.24.0",
        "peft": "0.21.2", "sentencepiece": "0.2.0"}
ok = 0
for name, ver in want.items():
    try:
        got = md.version(name)
    except md.PackageNotFoundError:
        got = None
    good = got is not None and got.split("+")[0] == ver
    ok += good
    print(f"[{'x' if good else ' '}] {name}=={ver} (installed: {got})")
print(f"{ok} / {len(want)} pinned libraries installed")
sys.exit(0 if ok == len(want) else 1)
PY
if [[ ",${extras}," == *,landmarks,* ]]; then
  "${venv}/bin/python" -c "from smop.data.face_landmarks import FaceLandmarkDetector as D; D('hog'); D('cnn')"
  log "dlib face landmarks: ok (its 68-point model is for non-commercial research use)"
fi
log "done: source ${venv}/bin/activate"
