import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A gate a shell command waits at until the test opens it, so a test can check what arrived while
 * the command was still running (streaming) without timing it: put `gate.wait` in the command
 * (`echo 1; ${gate.wait}; echo 2`), see "1" arrive, then `gate.open()`.
 */
export class ShellGate {
  private static next = 0;
  readonly path = join(tmpdir(), `edgetty-gate-${process.pid}-${ShellGate.next++}-${Date.now()}`);
  /** A shell snippet that returns once the gate is open (it checks every 20 ms). */
  readonly wait = `until [ -e '${this.path}' ]; do sleep 0.02; done; rm -f '${this.path}'`;

  open(): void {
    writeFileSync(this.path, "");
  }
}
