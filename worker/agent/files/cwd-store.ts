/**
 * Per-session working directories (`X-Session-Id`, e.g. one per Open WebUI chat), as the
 * reference keeps them: set by `POST /files/cwd`, read by the model tools and by commands' default
 * cwd, forgotten after CWD_TTL_MS without use (sliding). Keyed by the caller's scope too, so one
 * user cannot read or steer another's session.
 */

/** How long an unused session cwd is kept (the reference's OPEN_TERMINAL_SESSION_CWD_TTL). */
export const CWD_TTL_MS = 7 * 24 * 3600_000; // 7 days
/** Sessions remembered at once; the least recently used is dropped first. */
export const CWD_SESSIONS_MAX = 10_000;

export class CwdStore {
  /** Insertion order is recency order (a use re-inserts). */
  private readonly cwds = new Map<string, { cwd: string; usedAt: number }>();

  constructor(private readonly ttlMs = CWD_TTL_MS) {}

  private key(scope: string, session: string): string {
    return `${scope}\n${session}`;
  }

  /** The session's cwd, or undefined (no session, unknown or expired). */
  get(scope: string, session: string, now = Date.now()): string | undefined {
    if (!session) return undefined;
    const key = this.key(scope, session);
    const entry = this.cwds.get(key);
    if (!entry) return undefined;
    this.cwds.delete(key);
    if (now - entry.usedAt > this.ttlMs) return undefined;
    this.cwds.set(key, { cwd: entry.cwd, usedAt: now });
    return entry.cwd;
  }

  /** Sets the session's cwd; no-op without a session, as the reference. */
  set(scope: string, session: string, cwd: string, now = Date.now()): void {
    if (!session) return;
    const key = this.key(scope, session);
    this.cwds.delete(key);
    this.cwds.set(key, { cwd, usedAt: now });
    while (this.cwds.size > CWD_SESSIONS_MAX) this.cwds.delete(this.cwds.keys().next().value as string);
  }
}
