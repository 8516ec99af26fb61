# edgetty shell integration for zsh. planShellLaunch (launch.ts) appends this to the .zshrc of a
# private ZDOTDIR, after the user's own .zshrc has run and after a header that sets
# __edgetty_nonce, __edgetty_startup, __edgetty_welcome and __edgetty_debug. It reports each
# command (OSC 633 E/C/D, VS Code's marks, with the nonce) and the working directory (OSC 7)
# through zsh's own hook arrays, so the user's precmd/preexec functions keep running.

__edgetty_log() { [[ $__edgetty_debug == 1 ]] && builtin printf '[edgetty] %s\n' "$*"; return 0 }
__edgetty_log "zsh $ZSH_VERSION, init dir $__edgetty_zd, user files from ${__edgetty_uzd:-$HOME}"

typeset -g __edgetty_running=0

# Escapes $1 for a 633 field into REPLY: `\` doubled, `;` and control characters as \xHH.
__edgetty_esc() {
  emulate -L zsh
  setopt extendedglob
  local LC_ALL=C
  local s=${1//\\/\\\\}
  s=${s//;/\\x3b}
  REPLY=${s//(#m)[[:cntrl:]]/\\x${(l:2::0:)$(( [##16] #MATCH ))}}
}

# Reports the working directory as OSC 7, percent-encoding what a URL path may not hold.
__edgetty_cwd() {
  emulate -L zsh
  setopt extendedglob
  local LC_ALL=C
  builtin printf '\e]7;file://%s%s\a' "$HOST" "${PWD//(#m)[^A-Za-z0-9\/._~-]/%${(l:2::0:)$(( [##16] #MATCH ))}}"
}

__edgetty_preexec() {
  __edgetty_running=1
  __edgetty_esc "$1"
  builtin printf '\e]633;E;%s;%s\a\e]633;C\a' "$REPLY" "$__edgetty_nonce"
}

# First in precmd_functions, so it sees the command's status before anything else runs.
__edgetty_precmd() {
  local st=$?
  if (( __edgetty_running )); then
    __edgetty_running=0
    builtin printf '\e]633;D;%s;%s\a' "$st" "$__edgetty_nonce"
  fi
  __edgetty_cwd
  builtin printf '\e]633;A\a'
  [[ $PS1 == *$'\e]633;B\a'* ]] || PS1+=$'%{\e]633;B\a%}'
  return $st
}

precmd_functions=(__edgetty_precmd ${precmd_functions:#__edgetty_precmd})
preexec_functions=(${preexec_functions:#__edgetty_preexec} __edgetty_preexec)
__edgetty_log "command hooks: precmd_functions and preexec_functions"

if [[ -n $__edgetty_startup ]]; then
  if [[ -r $__edgetty_startup ]]; then
    __edgetty_log "startup script: $__edgetty_startup"
    builtin source "$__edgetty_startup"
  else
    builtin printf '[edgetty] startup script not readable: %s\n' "$__edgetty_startup" >&2
  fi
fi
[[ -n $__edgetty_welcome ]] && builtin printf '%s\n' "$__edgetty_welcome"
builtin unset __edgetty_startup __edgetty_welcome
