/**
 * What every kind of session (local shell, SSH, PID attach) hands the agent to start its PTY: the
 * program, its spawn plan, and hooks on the output path and at exit. agent.ts turns a launch into
 * a PtySession; each kind's module builds its launch.
 */
import type { ErrorInfo, ExitInfo } from "../../../shared/links/client.ts";
import type { SpawnPlan } from "../spawn.ts";
import type { IntegrationTarget } from "../shell-integration.ts";

export interface KindLaunch {
  /** What listings call the session's shell ("bash", "ssh", "attach"…). */
  shell: string;
  plan: SpawnPlan;
  file: string;
  args: string[];
  env: Record<string, string>;
  /** Every output chunk, in order. */
  onOutput?(chunk: Buffer): void;
  /** Acts on the session from now on (titles, prompt marks, command records). */
  attach(target: IntegrationTarget): void;
  /** Why the session ended, when that was a failure; sent to clients as an ERROR before EXIT. */
  describeExit?(exit: ExitInfo): ErrorInfo | undefined;
  /**
   * Resolves once the session has settled (an SSH login went through, or cannot be told apart
   * from a person typing); rejects with an ApiError when it failed before that. Absent: settled
   * at once. `exited` resolves when the PTY's process ends.
   */
  settled?(exited: Promise<ExitInfo>): Promise<void>;
  /** Releases what the launch made (files, sockets, helpers); called once the process has exited. */
  dispose(): void;
}
