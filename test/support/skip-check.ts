/**
 * The scroll-skip properties' comparison (test/worker/scroll-skip*.test.ts): the same bytes parsed
 * whole by a headless terminal, and taken by the screen model (which may skip what scrolls away)
 * in chunks.
 */
import { createScreenTerminal, ScreenState, SCROLLBACK_LINES } from "../../worker/agent/screen/screen-state.ts";
import { terminalState } from "../../worker/agent/screen/terminal-state.ts";
import { COLS, ROWS } from "./vt-streams.ts";

/**
 * The state of a COLS×ROWS terminal that parsed every byte of `bytes` (`full`), and of a screen
 * model pushed them cut at `cuts` (`skipped`), with `scrollback` lines; `shift` lays the bytes that
 * many bytes into a larger buffer (to reach every alignment). `scrolledPast`: the bytes skipped.
 */
export async function parsedAndSkipped(bytes: Uint8Array, cuts: number[], opts: { scrollback?: number; shift?: number } = {}) {
  const scrollback = opts.scrollback ?? SCROLLBACK_LINES;
  const full = createScreenTerminal(COLS, ROWS, scrollback);
  await new Promise<void>((resolve) => full.write(bytes, resolve));
  const screen = new ScreenState(COLS, ROWS, undefined, undefined, scrollback);
  const shift = opts.shift ?? 0;
  const moved = new Uint8Array(bytes.byteLength + shift).subarray(shift);
  moved.set(bytes);
  let at = 0;
  for (const cut of [...cuts, bytes.byteLength]) {
    if (cut <= at) continue;
    screen.push(moved.subarray(at, cut));
    at = cut;
  }
  await screen.catchUp();
  const result = { full: terminalState(full), skipped: terminalState(screen.terminal), scrolledPast: screen.scrolledPastBytes };
  full.dispose();
  screen.dispose();
  return result;
}
