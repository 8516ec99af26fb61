# edgetty shell integration for fish. planShellLaunch (launch.ts) writes this file, after a header
# that sets __edgetty_nonce, __edgetty_startup, __edgetty_welcome and __edgetty_debug, and fish
# sources it through --init-command, after the user's config files. It reports each command
# (OSC 633 E/C/D, VS Code's marks, with the nonce) and the working directory (OSC 7) from fish's
# events, so the user's own handlers and prompt keep working.

function __edgetty_log
    test "$__edgetty_debug" = 1; and printf '[edgetty] %s\n' "$argv"
    return 0
end
__edgetty_log "fish $version, init file $__edgetty_initfile"

set -g __edgetty_running 0

# Escapes $argv[1] for a 633 field: `\` doubled, `;` and control characters as \xHH.
function __edgetty_esc
    set -l s (string replace -a -- '\\' '\\\\' $argv[1] | string collect)
    set s (string replace -a -- ';' '\\x3b' $s | string collect)
    set s (string replace -a -- \n '\\x0a' $s | string collect)
    set s (string replace -a -- \r '\\x0d' $s | string collect)
    set s (string replace -a -- \t '\\x09' $s | string collect)
    set s (string replace -a -- \e '\\x1b' $s | string collect)
    set s (string replace -a -- \a '\\x07' $s | string collect)
    printf '%s' $s
end

function __edgetty_cwd
    printf '\e]7;file://%s%s\a' $hostname (string escape --style=url -- $PWD)
end

function __edgetty_preexec --on-event fish_preexec
    set -g __edgetty_running 1
    printf '\e]633;E;%s;%s\a\e]633;C\a' (__edgetty_esc $argv[1]) $__edgetty_nonce
end

function __edgetty_postexec --on-event fish_postexec
    set -l st $status
    if test "$__edgetty_running" = 1
        set -g __edgetty_running 0
        printf '\e]633;D;%s;%s\a' $st $__edgetty_nonce
    end
end

function __edgetty_prompt --on-event fish_prompt
    __edgetty_cwd
    printf '\e]633;A\a'
end
__edgetty_log "command hooks: fish_preexec, fish_postexec and fish_prompt events"

if test -n "$__edgetty_startup"
    if test -r "$__edgetty_startup"
        __edgetty_log "startup script: $__edgetty_startup"
        source "$__edgetty_startup"
    else
        printf '[edgetty] startup script not readable: %s\n' "$__edgetty_startup" >&2
    end
end
test -n "$__edgetty_welcome"; and printf '%s\n' "$__edgetty_welcome"
set -e __edgetty_startup __edgetty_welcome __edgetty_initfile
