# shellcheck shell=bash
# Stamps of finished outputs, one convention for every recipe step (sourced after utils/log.sh).
# <dir>/.done is written last, when everything in <dir> is; it holds what <dir> was made from:
# the command's settings and input paths (one per line) and the digests of the small input files
# it reads. A step whose stamp holds what it would write now is skipped; a stamp that differs
# means other inputs: the step removes the stamp and is done again (or, where that would throw
# away hours of work, stops and says what changed and what to remove).

is_done() {  # <dir> <stamp text>: true when <dir>/.done holds this text; logs what changed when it differs
  local dir=$1 want=$2
  [ -f "${dir}/.done" ] || return 1
  [ "$(cat "${dir}/.done")" = "${want}" ] && return 0
  log "${dir} was made from other inputs:"
  diff <(cat "${dir}/.done") <(printf '%s\n' "${want}") | sed -n 's/^< /  was: /p; s/^> /  now: /p' || true
  return 1
}

mark_done() {  # <dir> <stamp text>: mark <dir> finished (after its last output is written)
  printf '%s\n' "$2" > "$1/.done.tmp"
  mv "$1/.done.tmp" "$1/.done"
}

sha256_of() {  # <file>: its SHA-256, for a stamp line
  sha256sum "$1" | cut -d' ' -f1
}
