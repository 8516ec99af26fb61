/**
 * Condition waits driven by events, never by sleeping: whoever owns the state calls `notify()`
 * after each change, and every pending `until()` re-checks its predicate then.
 */
export class Waiters {
  private readonly pending = new Set<() => void>();

  notify(): void {
    for (const check of [...this.pending]) check();
  }

  /** Resolves once `predicate` holds; rejects after `timeoutMs` with `describe()` in the message. */
  until(predicate: () => boolean, what: string, timeoutMs: number, describe: () => string = () => ""): Promise<void> {
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
