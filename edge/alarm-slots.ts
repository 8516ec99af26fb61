/**
 * Several named deadlines sharing a Durable Object's single alarm. Each slot's time lives in
 * storage (so it survives hibernation and eviction); the alarm is always set to the earliest.
 * In `alarm()`, `due()` says which slots have come due and re-arms for the rest.
 *
 * Why: timers (`setTimeout`) do not keep a Durable Object in memory, a hibernated object only
 * wakes for an event, and an object has one alarm; a second deadline (a WebSocket's auth
 * window beside the idle clean-up) must share it without either one firing the other.
 */

const KEY_PREFIX = "alarm-slot:";

export class AlarmSlots<Slot extends string> {
  constructor(private readonly storage: DurableObjectStorage) {}

  /** Sets `slot` to fire at `at` (epoch ms), replacing its previous time. */
  async set(slot: Slot, at: number): Promise<void> {
    await this.storage.put(KEY_PREFIX + slot, at);
    await this.arm();
  }

  async clear(slot: Slot): Promise<void> {
    await this.storage.delete(KEY_PREFIX + slot);
    await this.arm();
  }

  /**
   * For `alarm()`: the slots whose time has come (now cleared); the alarm is re-armed for the
   * rest. The alarm was set for the earliest slot, so that one counts as due even if the alarm
   * runs ahead of its time (as a test's `runDurableObjectAlarm` makes it).
   */
  async due(now = Date.now()): Promise<Slot[]> {
    const slots = await this.storage.list<number>({ prefix: KEY_PREFIX });
    let threshold = now;
    if (slots.size > 0) threshold = Math.max(now, Math.min(...slots.values()));
    const out: Slot[] = [];
    for (const [key, at] of slots) {
      if (at > threshold) continue;
      out.push(key.slice(KEY_PREFIX.length) as Slot);
      await this.storage.delete(key);
    }
    await this.arm();
    return out;
  }

  private async arm(): Promise<void> {
    let earliest = Infinity;
    for (const at of (await this.storage.list<number>({ prefix: KEY_PREFIX })).values()) earliest = Math.min(earliest, at);
    if (earliest === Infinity) await this.storage.deleteAlarm();
    else await this.storage.setAlarm(earliest);
  }
}
