# edgetty shell integration for bash. planShellLaunch (launch.ts) writes this file, after a header
# that sets __edgetty_nonce, __edgetty_login, __edgetty_startup, __edgetty_welcome and
# __edgetty_debug, into a private init file that bash reads through --rcfile. It runs the user's
# usual startup files, then reports each command (OSC 633 E/C/D, VS Code's marks, with the nonce)
# and the working directory (OSC 7) without replacing the user's PROMPT_COMMAND, PS0 or DEBUG trap.

__edgetty_log() { [ "$__edgetty_debug" = 1 ] && builtin printf '[edgetty] %s\n' "$*"; return 0; }
__edgetty_log "bash $BASH_VERSION, init file $__edgetty_rcfile"

# The user's files, as bash reads them itself. bash has already read the system bashrc where the
# distribution builds one in (Debian's /etc/bash.bashrc), before this file.
if [ "$__edgetty_login" = 1 ]; then
  [ -r /etc/profile ] && . /etc/profile
  if [ -r ~/.bash_profile ]; then __edgetty_log "reading ~/.bash_profile"; . ~/.bash_profile
  elif [ -r ~/.bash_login ]; then __edgetty_log "reading ~/.bash_login"; . ~/.bash_login
  elif [ -r ~/.profile ]; then __edgetty_log "reading ~/.profile"; . ~/.profile
  fi
elif [ -r ~/.bashrc ]; then
  __edgetty_log "reading ~/.bashrc"
  . ~/.bashrc
fi

__edgetty_running=0
__edgetty_armed=0
__edgetty_histnum=

# Escapes $1 for a 633 field into REPLY: `\` doubled, `;` and control characters as \xHH.
__edgetty_esc() {
  local LC_ALL=C s=$1 out= c i
  s=${s//\\/\\\\}
  s=${s//;/\\x3b}
  if [[ $s == *[$'\x01'-$'\x1f\x7f']* ]]; then
    for (( i = 0; i < ${#s}; i++ )); do
      c=${s:i:1}
      [[ $c == [$'\x01'-$'\x1f\x7f'] ]] && builtin printf -v c '\\x%02x' "'$c"
      out+=$c
    done
    s=$out
  fi
  REPLY=$s
}

# Reports the working directory as OSC 7, percent-encoding what a URL path may not hold.
__edgetty_cwd() {
  local LC_ALL=C p=$PWD out= c i
  if [[ $p == *[!A-Za-z0-9/._~-]* ]]; then
    for (( i = 0; i < ${#p}; i++ )); do
      c=${p:i:1}
      [[ $c == [A-Za-z0-9/._~-] ]] || builtin printf -v c '%%%02X' "'$c"
      out+=$c
    done
    p=$out
  fi
  builtin printf '\e]7;file://%s%s\a' "$HOSTNAME" "$p"
}

# The number of the newest history entry, or nothing when history is off.
__edgetty_histnum_now() {
  local h
  h=$(HISTTIMEFORMAT= builtin history 1)
  h=${h#"${h%%[![:space:]]*}"}
  REPLY=${h%%[!0-9]*}
}

# A command line is about to run: $1 is its text when known (bash-preexec passes it).
__edgetty_preexec() {
  local cmd=${1-$BASH_COMMAND} h num
  if [ $# -eq 0 ]; then
    # The command line from history, if bash recorded it (not with ignorespace or HISTIGNORE);
    # otherwise the first simple command, which is what bash tells us.
    h=$(HISTTIMEFORMAT= builtin history 1)
    h=${h#"${h%%[![:space:]]*}"}
    num=${h%%[!0-9]*}
    if [[ -n $num && $num != "$__edgetty_histnum" ]]; then
      h=${h#"$num"}
      h=${h#\*}
      cmd=${h#  }
    fi
  fi
  __edgetty_running=1
  __edgetty_esc "$cmd"
  builtin printf '\e]633;E;%s;%s\a\e]633;C\a' "$REPLY" "$__edgetty_nonce"
}

# Runs first in PROMPT_COMMAND: ends the running record, reports the cwd, marks the prompt, and
# hands the command's status on to the user's prompt commands.
__edgetty_precmd() {
  local st=$?
  __edgetty_armed=0
  if [ "$__edgetty_running" = 1 ]; then
    __edgetty_running=0
    builtin printf '\e]633;D;%s;%s\a' "$st" "$__edgetty_nonce"
  fi
  __edgetty_cwd
  builtin printf '\e]633;A\a'
  __edgetty_histnum_now
  __edgetty_histnum=$REPLY
  [[ $PS1 == *'\e]633;B\a'* ]] || PS1+='\[\e]633;B\a\]'
  # PS0 is expanded only when a command line was read; its arithmetic arms the DEBUG trap.
  [[ ${PS0-} == *__edgetty_armed=1* ]] || PS0+='${__edgetty_armed:0:$((__edgetty_armed=1,0))}'
  return "$st"
}

if [[ -n ${bash_preexec_imported-} ]]; then
  __edgetty_log "command hooks: bash-preexec"
  __edgetty_bp_preexec() { __edgetty_preexec "$1"; }
  precmd_functions=(__edgetty_precmd "${precmd_functions[@]}")
  preexec_functions+=(__edgetty_bp_preexec)
else
  __edgetty_log "command hooks: PROMPT_COMMAND, PS0 and a DEBUG trap"
  # Keep a DEBUG trap the user set: ours runs it after its own work.
  __edgetty_user_trap=$(trap -p DEBUG)
  if [ -n "$__edgetty_user_trap" ]; then
    eval "__edgetty_user_trap=( $__edgetty_user_trap )"
    __edgetty_user_trap=${__edgetty_user_trap[2]}
  fi
  __edgetty_debug_trap() {
    if [ "$__edgetty_armed" = 1 ]; then
      __edgetty_armed=0
      __edgetty_preexec
    fi
    if [ -n "$__edgetty_user_trap" ]; then builtin eval "$__edgetty_user_trap"; fi
  }
  trap '__edgetty_debug_trap "$_"' DEBUG
  if [[ $(declare -p PROMPT_COMMAND 2>/dev/null) == "declare -a"* ]]; then
    PROMPT_COMMAND=(__edgetty_precmd "${PROMPT_COMMAND[@]}")
  else
    PROMPT_COMMAND="__edgetty_precmd${PROMPT_COMMAND:+$'\n'$PROMPT_COMMAND}"
  fi
fi

if [ -n "$__edgetty_startup" ]; then
  if [ -r "$__edgetty_startup" ]; then
    __edgetty_log "startup script: $__edgetty_startup"
    . "$__edgetty_startup"
  else
    builtin printf '[edgetty] startup script not readable: %s\n' "$__edgetty_startup" >&2
  fi
fi
[ -n "$__edgetty_welcome" ] && builtin printf '%s\n' "$__edgetty_welcome"
unset __edgetty_startup __edgetty_welcome __edgetty_login __edgetty_rcfile
