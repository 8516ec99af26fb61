/**
 * The Node flags every agent process starts with: the local stack's, the extra agents', the
 * systemd unit's (`edgetty agent install`) and the shebangs of bin/edgetty.js and the agent bundle
 * (scripts/build-agent.mjs), which a test keeps equal to this list.
 *
 * - `--max-semi-space-size=1` (MB): the agent streams output through short-lived buffers, and a
 *   small young generation keeps its memory flat under a flood instead of V8 growing it (the
 *   memory figures of `npm run bench`).
 * - `--single-threaded-gc`: V8 collects on the agent's own thread instead of starting helper
 *   threads for marking and scavenging. The agent shares its host's cores with the commands it
 *   runs (and, locally, with workerd and the clients), where helpers only add work: a 100 MB
 *   upload cost the agent 0.38–0.41 CPU s with them and 0.29 without, and went 216–230 → 224–288
 *   MB/s in the bench; terminal echo p50/p99 over 4 000 keystrokes did not move (0.30/2.0–2.3 ms
 *   both ways, docs/architecture.md).
 */
export const AGENT_NODE_FLAGS: readonly string[] = ["--max-semi-space-size=1", "--single-threaded-gc"];
