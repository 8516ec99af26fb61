/**
 * How a terminal's client slots are shared between clients that may write and read-only ones
 * (the session API's join in terminal-do.ts, the Open Terminal socket's in raw-terminal.ts).
 */

/** Share of a terminal's client slots only clients that may write can take: 1 in WRITER_RESERVE_DIVISOR, rounded up. */
export const WRITER_RESERVE_DIVISOR = 8;

/**
 * Whether one more client fits: a client that may write up to `maxClients`; a read-only one (a
 * share link's viewer, a `read` grant) only while the slots held for writers stay free (4 of the
 * default 32), so viewers cannot lock the terminal's own users out of it. With a single slot
 * there is nothing to hold.
 */
export function hasRoom(clients: number, maxClients: number, readonly: boolean): boolean {
  const held = maxClients > 1 ? Math.ceil(maxClients / WRITER_RESERVE_DIVISOR) : 0;
  return clients < (readonly ? maxClients - held : maxClients);
}
