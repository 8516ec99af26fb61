# edgetty shell integration for POSIX sh (dash, ash), best effort. planShellLaunch (launch.ts)
# writes this file, after a header that sets __edgetty_user_env, __edgetty_startup,
# __edgetty_welcome and __edgetty_debug, and passes it as $ENV, which an interactive sh reads.
# sh has no hook before a command runs, so commands are not recorded; the prompt reports the
# working directory (OSC 7) and marks the prompt (OSC 633 A).

__edgetty_log() { [ "$__edgetty_debug" = 1 ] && printf '[edgetty] %s\n' "$*"; return 0; }
__edgetty_log "sh, init file $__edgetty_envfile"

# The user's own $ENV file, which ours stands in for; children see the user's $ENV again.
if [ -n "$__edgetty_user_env" ]; then
  ENV=$__edgetty_user_env
  export ENV
  # sh applies parameter expansion to $ENV before reading it (POSIX); so do we.
  eval "__edgetty_f=\"$ENV\""
  if [ -r "$__edgetty_f" ]; then __edgetty_log "reading $__edgetty_f"; . "$__edgetty_f"; fi
  unset __edgetty_f
else
  unset ENV
fi

__edgetty_host=$(uname -n 2>/dev/null)

# Runs in the prompt's command substitution (a subshell): OSC 7 with `%` encoded, then 633;A.
__edgetty_prompt() {
  __edgetty_p=$PWD __edgetty_r=
  while :; do
    case $__edgetty_p in
      *%*) __edgetty_r=$__edgetty_r${__edgetty_p%%\%*}%25; __edgetty_p=${__edgetty_p#*%} ;;
      *) break ;;
    esac
  done
  printf '\033]7;file://%s%s\007\033]633;A\007' "$__edgetty_host" "$__edgetty_r$__edgetty_p"
}
PS1='$(__edgetty_prompt)'"${PS1-\$ }"
__edgetty_log "command hooks: none in sh (working directory only)"

if [ -n "$__edgetty_startup" ]; then
  if [ -r "$__edgetty_startup" ]; then
    __edgetty_log "startup script: $__edgetty_startup"
    . "$__edgetty_startup"
  else
    printf '[edgetty] startup script not readable: %s\n' "$__edgetty_startup" >&2
  fi
fi
[ -n "$__edgetty_welcome" ] && printf '%s\n' "$__edgetty_welcome"
unset __edgetty_startup __edgetty_welcome __edgetty_user_env __edgetty_envfile
