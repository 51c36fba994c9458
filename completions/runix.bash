# bash completion for runix: commands, options, store paths and a
# distributable's apps.  The commands and options come from runix's own
# --help, so they always match the runix on PATH.

# The names listed under "Commands:" in the help text on stdin.
_runix_commands() {
  sed -n '/^Commands:$/,/^$/s/^  \([^ ][^ ]*\) .*/\1/p' | grep -vx help
}

# The long and short options in the help text on stdin.
_runix_options() {
  grep -oE '(^|[ ,])--?[A-Za-z0-9][A-Za-z0-9-]*' | sed 's/^[ ,]*//' | sort -u
}

_runix() {
  local prog=${COMP_WORDS[0]} cur=${COMP_WORDS[COMP_CWORD]} prev=""
  ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  local cmd="" sub="" store="" help w i
  local -a args=()
  COMPREPLY=()
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    case $w in
      --store) store=${COMP_WORDS[i + 1]:-}; ((i++)); continue ;;
      --cache | --extra-cache | --trusted-key | --engine | --url | --with | -o | --output | --rootfs | --oci | --entry | --layers) ((i++)); continue ;;
      --init | --hostname | --map | --network | --stop-timeout) ((i++)); continue ;;
      -*) continue ;;
    esac
    if [ -z "$cmd" ]; then
      cmd=$w
      help=$(command "$prog" "$cmd" --help 2>/dev/null)
      if [[ $help == *$'\nCommands:\n'* ]]; then sub=""; else sub=-; fi
    elif [ -z "$sub" ]; then
      sub=$w
    else
      args+=("$w")
    fi
  done
  case $prev in
    --store) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
    --cache | --extra-cache | --trusted-key | --url | --entry) return ;;
    --layers) mapfile -t COMPREPLY < <(compgen -W "per-path one" -- "$cur"); return ;;
    --rootfs) mapfile -t COMPREPLY < <(compgen -d -- "$cur"); return ;;
    --map) mapfile -t COMPREPLY < <(compgen -W "auto single subid" -- "$cur"); return ;;
    --hostname | --stop-timeout | --init | --network) return ;;
  esac
  local -a words=()
  if [ -z "$cmd" ]; then
    help=$(command "$prog" --help 2>/dev/null)
    if [[ $cur == -* ]]; then
      mapfile -t words < <(_runix_options <<<"$help")
    else
      mapfile -t words < <(_runix_commands <<<"$help")
    fi
    mapfile -t COMPREPLY < <(compgen -W "${words[*]}" -- "$cur")
    return
  fi
  if [ -z "$sub" ] && [[ $cur != -* ]]; then
    mapfile -t words < <(_runix_commands <<<"$help")
    mapfile -t COMPREPLY < <(compgen -W "${words[*]}" -- "$cur")
    return
  fi
  if [[ $cur == -* ]]; then
    [ "$sub" != - ] && help=$(command "$prog" "$cmd" "$sub" --help 2>/dev/null)
    mapfile -t words < <(_runix_options <<<"$help")
    mapfile -t COMPREPLY < <(compgen -W "${words[*]}" -- "$cur")
    return
  fi
  if [[ $cur == *'#'* ]]; then
    local file=${cur%%#*}
    mapfile -t words < <(command "$prog" self complete apps "$file" 2>/dev/null)
    mapfile -t COMPREPLY < <(compgen -P "$file#" -W "${words[*]}" -- "${cur#*#}")
    return
  fi
  if [[ $cur == /nix/store/* || /nix/store/ == "$cur"* ]]; then
    mapfile -t COMPREPLY < <(command "$prog" self complete paths ${store:+--store "$store"} "$cur" 2>/dev/null)
    [ ${#COMPREPLY[@]} -gt 0 ] && return
  fi
  compopt -o filenames 2>/dev/null
  mapfile -t COMPREPLY < <(compgen -f -- "$cur")
}

complete -F _runix runix
