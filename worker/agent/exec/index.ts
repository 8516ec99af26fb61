/**
 * The agent side of the Open Terminal execute API: ExecManager (the transport-free core), who
 * calls it and where their commands run (exec-caller.ts), and ExecRelay (its adapter to the
 * control link's exec.* messages).
 */
export { ExecError } from "./exec-caller.ts";
export { ExecManager, FINISHED_PROCESS_TTL_MS, KILL_ESCALATE_MS, MAX_RUNNING_PROCESSES, MAX_TRACKED_PROCESSES } from "./exec-manager.ts";
export type { ExecLimits, ExecManagerOptions } from "./exec-manager.ts";
export { ExecRelay, RELAY_MAX_INFLIGHT } from "./exec-relay.ts";
export { ExecStream, STREAM_QUEUE_MAX_CHARS } from "./exec-stream.ts";
export { PROCESS_OUTPUT_MAX_BYTES, PROCESS_OUTPUT_MAX_ENTRIES } from "./process-output-log.ts";
