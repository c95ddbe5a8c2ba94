#!/usr/bin/env bash
# Parse --name value options into the shell variables the calling script declared.
# Source it after declaring the defaults:   . utils/parse_options.sh || exit 1
# --name and --name=value both work; a dash in a name maps to an underscore. An option without a
# declared variable is an error (exit 2). Positional arguments stay in "$@".
# --help or -h prints the help after every option is parsed, so that it shows the values this call
# passes (a recipe's run.sh passes its own): the calling script's function usage() when it has
# one (it reads the variables then), else the text of ${help_message}; then exits 0.

while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h)
      __help=true
      shift
      continue ;;
    --*=*)
      __name=$(echo "${1%%=*}" | sed 's/^--//; s/-/_/g')
      __value="${1#*=}"
      shift ;;
    --*)
      __name=$(echo "$1" | sed 's/^--//; s/-/_/g')
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" 1>&2; exit 2; fi
      __value="$2"
      shift 2 ;;
    *) break ;;
  esac
  if ! declare -p "${__name}" >/dev/null 2>&1; then
    echo "$0: invalid option --${__name}" 1>&2
    exit 2
  fi
  # Booleans are checked so that a typo such as --use_foo ture fails loudly.
  __old=$(eval "echo \"\${${__name}}\"")
  if { [ "${__old}" = true ] || [ "${__old}" = false ]; } && [ "${__value}" != true ] && [ "${__value}" != false ]; then
    echo "$0: --${__name} takes true or false, not '${__value}'" 1>&2
    exit 2
  fi
  printf -v "${__name}" '%s' "${__value}"
done
if [ "${__help:-}" = true ]; then
  if declare -F usage >/dev/null; then usage 1>&2
  elif [ -n "${help_message:-}" ]; then printf "%s\n" "${help_message}" 1>&2
  else echo "No help found." 1>&2; fi
  exit 0
fi
unset __name __value __old __help
true
