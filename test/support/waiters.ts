/**
 * The one way tests wait for a condition, never by sleeping:
 * - `Waiters`: for state a test owns (a client's frames, a PTY's output). Whoever changes the state
 *   calls `notify()`, and every pending `until()` re-checks its predicate then.
 * - `until()`: for state outside the test's reach that raises no event (processes in /proc, a
 *   server's HTTP answers, files): re-checked every `everyMs` until it holds.
 * Both reject after their timeout with what they waited for in the message. Runtime-neutral (no
 * Node imports), so edge tests in workerd can use it too.
 */
/** Default time a wait may take before it fails the test, in milliseconds. */
export const WAIT_TIMEOUT_MS = 15_000;
/** How often `until()` re-checks, in milliseconds. */
export const POLL_EVERY_MS = 25;

export class Waiters {
  private readonly pending = new Set<() => void>();

  notify(): void {
    for (const check of [...this.pending]) check();
  }

  /** Resolves once `predicate` holds; rejects after `timeoutMs` with `describe()` in the message. */
  until(predicate: () => boolean, what: string, timeoutMs = WAIT_TIMEOUT_MS, describe: () => string = () => ""): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe()}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.pending.delete(check);
      };
      this.pending.add(check);
    });
  }
}

export interface UntilOptions {
  /** Give up after this long, in milliseconds. */
  timeoutMs?: number;
  /** Re-check this often, in milliseconds. */
  everyMs?: number;
  /** Extra detail for the failure message (the state seen last). */
  describe?: () => string;
}

/**
 * Resolves with the first truthy value `check` returns (re-checked every `everyMs`); rejects
 * after `timeoutMs` naming `what`. A check that throws counts as not yet.
 */
export async function until<T>(what: string, check: () => T | Promise<T>, options: UntilOptions = {}): Promise<NonNullable<T>> {
  const { timeoutMs = WAIT_TIMEOUT_MS, everyMs = POLL_EVERY_MS, describe = () => "" } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve()
      .then(check)
      .catch(() => null);
    if (value) return value as NonNullable<T>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describe()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
