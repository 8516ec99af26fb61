/**
 * Serializes a headless terminal into the bytes that repaint it on a fresh client terminal:
 * what a late joiner receives as its first OUTPUT frame.
 */
import type { Terminal } from "@xterm/headless";
import { SerializeAddon } from "@xterm/addon-serialize";

const addons = new WeakMap<Terminal, SerializeAddon>();

/** Bytes that, written to an empty terminal of the same size, reproduce `term`'s screen. */
export function serializeScreen(term: Terminal): string {
  let addon = addons.get(term);
  if (!addon) {
    addon = new SerializeAddon();
    term.loadAddon(addon as never);
    addons.set(term, addon);
  }
  // Reset first so a client that had stale content starts from a clean screen.
  return "\x1bc" + addon.serialize();
}
