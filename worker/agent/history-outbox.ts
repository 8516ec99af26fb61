/**
 * Command records on their way to the TerminalDO over a PTY's data link. The DO stores them
 * (upsert by id), so sending one twice is harmless and losing one is not: a record stays here
 * until the edge has provably processed it, and everything still here is sent again after each
 * reconnect's RESUME.
 *
 * The proof is the output acknowledgement: frames on one WebSocket arrive and are processed in
 * order, so once the DO acknowledges output that was handed to the link *after* a record (an ACK
 * above the link's send position at that moment, on the same connection), the record is stored.
 * Records are produced while their output chunk is still waiting to be flushed, so the ACK that
 * confirms them is the one for that very frame (sent at once for a small frame, within 512 KiB of
 * output in a flood).
 */
import type { CommandRecord } from "../../shared/history.ts";

/** Records waiting to be sent or confirmed, per terminal; the oldest are dropped past this. */
export const HISTORY_OUTBOX_MAX_RECORDS = 256;

interface Entry {
  record: CommandRecord;
  /** The link's send position when this version went out on the current connection; null: not sent. */
  sentAt: number | null;
}

export class HistoryOutbox {
  /** By record id; Map order is insertion order, so the first key is the oldest record. */
  private readonly entries = new Map<number, Entry>();

  constructor(private readonly maxRecords = HISTORY_OUTBOX_MAX_RECORDS) {}

  get size(): number {
    return this.entries.size;
  }

  /** A new or changed record: (re)queue it, replacing an older version of the same id. */
  push(record: CommandRecord): void {
    const existing = this.entries.get(record.id);
    if (existing) {
      existing.record = record;
      existing.sentAt = null;
      return;
    }
    this.entries.set(record.id, { record, sentAt: null });
    while (this.entries.size > this.maxRecords) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Records not yet sent on this connection, marked as sent at the link position `sentOffset`. */
  take(sentOffset: number): CommandRecord[] {
    const out: CommandRecord[] = [];
    for (const entry of this.entries.values()) {
      if (entry.sentAt !== null) continue;
      entry.sentAt = sentOffset;
      out.push(entry.record);
    }
    return out;
  }

  /** The edge holds output below `ackOffset`: records sent before any of it are stored. */
  confirm(ackOffset: number): void {
    for (const [id, entry] of this.entries) {
      if (entry.sentAt !== null && ackOffset > entry.sentAt) this.entries.delete(id);
    }
  }

  /** A new connection: nothing sent on the old one counts any more. */
  unsendAll(): void {
    for (const entry of this.entries.values()) entry.sentAt = null;
  }
}
