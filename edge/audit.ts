/**
 * The audit log in D1 (table `audit_events`, migration 0003): who did what, to which server or
 * terminal, when and from where. Retention is bounded by age and by row count; pruning runs on
 * writes, at most once per {@link AUDIT_PRUNE_EVERY} events.
 */
import type { AuditEvent as WireAuditEvent } from "../shared/admin.ts";

/** Longest an event is kept, in ms (90 days). */
export const AUDIT_RETENTION_MS = 90 * 24 * 60 * 60 * 1000;
/** Most events kept; older ones are pruned first. */
export const AUDIT_MAX_EVENTS = 100_000;
/** Prune on one write in this many (chosen by the new row's id). */
export const AUDIT_PRUNE_EVERY = 100;
/** Longest `detail` stored, in characters. */
export const AUDIT_DETAIL_MAX_CHARS = 1_000;
/**
 * A read (GET or HEAD) through a server's mount repeated by the same caller, from the same
 * address, with the same audit detail, is recorded once per this long, in ms: pages poll (the
 * web app's session list and history every 5 s), and one row per poll would push admin changes
 * out of the log within days. Writes, WebSocket attaches and admin changes are always recorded.
 */
export const AUDIT_READ_REPEAT_MS = 10 * 60 * 1000;
/**
 * Most distinct reads remembered for that per Worker isolate; the oldest is forgotten first. Each
 * key holds what its row would (the detail cut to AUDIT_DETAIL_MAX_CHARS): about 1.3 KB at most,
 * so 1.3 MB in all.
 */
export const AUDIT_READ_REPEAT_KEYS = 1_000;
/** Most events one page answers. */
export const AUDIT_PAGE_MAX = 500;
/** Events per page when the caller doesn't say. */
export const AUDIT_PAGE_DEFAULT = 100;

/** What was done (the `action` column). */
export type AuditAction =
  | "sign-in"
  | "token.create"
  | "token.revoke"
  | "user.create"
  | "user.update"
  | "user.delete"
  | "group.create"
  | "group.delete"
  | "group.member"
  | "grant.put"
  | "grant.delete"
  | "server.put"
  | "server.update"
  | "server.delete"
  | "terminal.create"
  | "terminal.attach.read"
  | "terminal.attach.write"
  | "terminal.delete"
  | "share.create"
  | "share.revoke"
  | "share.use"
  | "execute"
  | "proxy";

/** One event, with an action of this edge's list (the wire shape is shared/admin.ts's). */
export interface AuditEvent extends WireAuditEvent {
  action: AuditAction;
}

/** The client address of a request, as Cloudflare reports it. */
export function clientIp(request: Request): string {
  return (request.headers.get("CF-Connecting-IP") ?? "").slice(0, 64);
}

/**
 * Which repeated reads to leave out of the log (AUDIT_READ_REPEAT_MS). Per isolate and in memory:
 * another isolate, or this one after a restart, records the read again, so a read is recorded at
 * least once per window wherever it is served, never less.
 */
export class ReadRepeats {
  /** The last time each read was recorded, oldest first (a Map keeps insertion order). */
  private readonly recorded = new Map<string, number>();

  constructor(
    private readonly windowMs = AUDIT_READ_REPEAT_MS,
    private readonly maxKeys = AUDIT_READ_REPEAT_KEYS,
  ) {}

  /** True when the read named by `key` is to be recorded at `now` (ms); it is then remembered. */
  shouldRecord(key: string, now = Date.now()): boolean {
    const last = this.recorded.get(key);
    if (last !== undefined && now - last < this.windowMs) return false;
    this.recorded.delete(key);
    this.recorded.set(key, now);
    if (this.recorded.size > this.maxKeys) this.recorded.delete(this.recorded.keys().next().value!);
    return true;
  }
}

/** Appends one event; prunes old events now and then. */
export async function recordAudit(
  db: D1Database,
  event: { actor: string; action: AuditAction; server_id?: string | null; terminal_id?: number | null; detail?: string; ip?: string },
  now = Date.now(),
): Promise<void> {
  const result = await db
    .prepare("INSERT INTO audit_events (at, actor, action, server_id, terminal_id, detail, ip) VALUES (?, ?, ?, ?, ?, ?, ?)")
    .bind(now, event.actor.slice(0, 200), event.action, event.server_id ?? null, event.terminal_id ?? null, (event.detail ?? "").slice(0, AUDIT_DETAIL_MAX_CHARS), event.ip ?? "")
    .run();
  const id = Number(result.meta.last_row_id ?? 0);
  if (id % AUDIT_PRUNE_EVERY === 0) await pruneAudit(db, now);
}

/** Drops events older than the retention or beyond the newest {@link AUDIT_MAX_EVENTS}. */
export async function pruneAudit(db: D1Database, now = Date.now(), maxEvents = AUDIT_MAX_EVENTS): Promise<void> {
  await db.batch([
    db.prepare("DELETE FROM audit_events WHERE at < ?").bind(now - AUDIT_RETENTION_MS),
    db.prepare("DELETE FROM audit_events WHERE id <= (SELECT id FROM audit_events ORDER BY id DESC LIMIT 1 OFFSET ?)").bind(maxEvents),
  ]);
}

/** One page of events, newest first, strictly older than event `before` (an id) when given. */
export async function listAudit(db: D1Database, page: { before?: number; limit?: number } = {}): Promise<{ events: AuditEvent[]; next_before: number | null }> {
  const limit = Math.min(Math.max(1, Math.floor(page.limit ?? AUDIT_PAGE_DEFAULT)), AUDIT_PAGE_MAX);
  const before = page.before ?? Number.MAX_SAFE_INTEGER;
  const { results } = await db
    .prepare("SELECT id, at, actor, action, server_id, terminal_id, detail, ip FROM audit_events WHERE id < ? ORDER BY id DESC LIMIT ?")
    .bind(before, limit + 1)
    .all<AuditEvent>();
  const events = results.slice(0, limit);
  return { events, next_before: results.length > limit ? events[events.length - 1]!.id : null };
}
