# edgetty's one native part of its own: posix_spawn onto a PTY for the agent's PTY host (pty_spawn.c).
# Built by scripts/build-native.mjs at `npm install`; where it cannot build, node-pty forks instead.
{
  "targets": [
    {
      "target_name": "edgetty_pty_spawn",
      "sources": ["pty_spawn.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "conditions": [["OS!='linux'", {"type": "none", "sources": []}]]
    }
  ]
}
