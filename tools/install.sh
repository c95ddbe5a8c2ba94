#!/usr/bin/env bash
# Create tools/venv with smop and its pinned dependencies; idempotent.
# Usage: tools/install.sh [--system-packages auto|true|false] [--python python3.11] [--extra landmarks|quant|vad|demo]...
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }

system_packages=auto   # install the Debian packages below with apt-get (auto: when root)
python=                # interpreter for the venv (default: python3.11, python3.12, python3.10 or python3)
extras="test"          # setup.py extras (--extra repeats); landmarks: dlib (face landmarks from raw
                       # video); quant: bitsandbytes (the frozen LLM in 4 or 8 bits); vad: silero-vad
                       # (smop-transcribe --vad silero); demo: gradio and playwright (smop-demo and its
                       # browser tests) with Debian's chromium

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

# 0. Python 3.10-3.12, with venv. espnet 202511 pins sentencepiece==0.2.0, which has no wheel for
# 3.13 (pip would try to compile it); espnet's later releases need 3.12+.
why_python="espnet 202511 pins sentencepiece 0.2.0, which has no wheel for Python 3.13"
supported() { "$1" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 12))' 2>/dev/null; }
if [ -z "${python}" ]; then
  for p in python3.11 python3.12 python3.10 python3; do
    if command -v "${p}" >/dev/null 2>&1 && supported "${p}"; then python=${p}; break; fi
  done
  [ -n "${python}" ] || { echo "$0: smop needs Python 3.10, 3.11 or 3.12 (${why_python}); none found (give one with --python)" >&2; exit 1; }
fi
"${python}" -V >/dev/null 2>&1 || { echo "$0: ${python} not found (or it does not run)" >&2; exit 1; }
supported "${python}" || { echo "$0: smop needs Python 3.10, 3.11 or 3.12 (${why_python}); ${python} is $("${python}" -V 2>&1)" >&2; exit 1; }
if [ ! -x "${venv}/bin/python" ] && ! "${python}" -c 'import ensurepip, venv' 2>/dev/null; then
  pyv=$("${python}" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  echo "$0: ${python} cannot create virtual environments: install python${pyv}-venv (sudo apt-get install python${pyv}-venv)" >&2
  exit 1
fi

# 1. Debian packages. The recipes call sox (audio), ffmpeg (mp4), sctk (sclite) and espeak-ng (the
#    mini corpus); the tests also use the script linter, and Slurm with munge (ci/slurm_cluster.sh
#    starts a two-node test cluster on this machine for the recipes' cmd_backend=slurm).
missing() {  # <binary:package>...: the packages whose binary is not there
  local pair bin
  for pair in "$@"; do
    bin=${pair%%:*}
    if ! command -v "${bin}" >/dev/null 2>&1 && [ ! -x "${bin}" ]; then echo "${pair##*:}"; fi
  done
}
mapfile -t need_recipes < <(missing sox:sox ffmpeg:ffmpeg espeak-ng:espeak-ng /usr/lib/sctk/bin/sclite:sctk)
mapfile -t need_tests < <(missing shellcheck:shellcheck /usr/sbin/slurmd:slurm-wlm /usr/sbin/munged:munge)
# The demo's browser tests drive Debian's chromium through playwright (playwright's own browser
# download would need a host other than the package registries).
if [[ ",${extras}," == *,demo,* ]]; then mapfile -t -O ${#need_tests[@]} need_tests < <(missing chromium:chromium); fi
need_apt=("${need_recipes[@]}" "${need_tests[@]}")
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "${system_packages}" = true ] || { [ "${system_packages}" = auto ] && [ "$(id -u)" = 0 ]; }; then
    log "apt-get install ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  elif [ ${#need_recipes[@]} -gt 0 ] && [ "${system_packages}" = auto ]; then
    echo "$0: the recipes need Debian packages that are not installed: ${need_recipes[*]}" >&2
    echo "  Install them as root (sudo apt-get install ${need_apt[*]}) and run $0 again, or set up" >&2
    echo "  tools/venv without them: $0 --system-packages false (the recipes will then fail at stage 0)" >&2
    exit 1
  else
    log "WARNING: missing Debian packages: ${need_apt[*]} (as root: apt-get install ${need_apt[*]})"
    [ ${#need_recipes[@]} -eq 0 ] && log "  (only the Slurm and shellcheck tests need these; they are skipped without them)"
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

# 3. Verify the pins of setup.py for this Python (ESPnet's check_install.py style): report N / M and
#    fail on a mismatch.
"${venv}/bin/python" - <<'PY'
import importlib.metadata as md, sys
from packaging.requirements import Requirement
ok = total = 0
for line in md.requires("smop") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue  # another Python's pin, or an extra
    try:
        got = md.version(req.name)
    except md.PackageNotFoundError:
        got = None
    good = got is not None and req.specifier.contains(got.split("+")[0], prereleases=True)
    total += 1
    ok += good
    if not good or "==" in str(req.specifier):
        print(f"[{'x' if good else ' '}] {req.name}{req.specifier} (installed: {got})")
print(f"{ok} / {total} required libraries installed as setup.py pins them (Python {sys.version.split()[0]})")
sys.exit(0 if ok == total else 1)
PY
if [[ ",${extras}," == *,landmarks,* ]]; then
  "${venv}/bin/python" -c "from smop.data.face_landmarks import FaceLandmarkDetector as D; D('hog'); D('cnn')"
  log "dlib face landmarks: ok (its 68-point model is for non-commercial research use)"
fi
if [[ ",${extras}," == *,quant,* ]]; then
  "${venv}/bin/python" -c "import smop, bitsandbytes; print(bitsandbytes.__version__)" > /dev/null
  log "bitsandbytes (the LLM in 4 or 8 bits): ok"
fi
if [[ ",${extras}," == *,vad,* ]]; then
  "${venv}/bin/python" -c "from smop.inference.segments import silero_model; silero_model()"
  log "silero-vad (smop-transcribe --vad silero): ok"
fi
if [[ ",${extras}," == *,demo,* ]]; then
  "${venv}/bin/python" -c "import gradio, playwright.sync_api; print(gradio.__version__)" > /dev/null
  if command -v chromium > /dev/null; then
    log "gradio, playwright and $(chromium --version 2>/dev/null | sed -n 1p): ok"
  else
    log "WARNING: gradio and playwright: ok, but no chromium (as root: apt-get install chromium); the browser tests are skipped"
  fi
fi
log "done: source ${venv}/bin/activate"
