// What the phone key bar sends: escape sequences for special keys and the effect of its sticky
// Ctrl/Alt modifiers on typed characters, following xterm's encoding (what shells and TUIs expect).

/** Modifier state of the key bar. */
export interface Modifiers {
  ctrl: boolean;
  alt: boolean;
}

/** Keys the key bar can send. */
export type BarKey = "Escape" | "Tab" | "ArrowUp" | "ArrowDown" | "ArrowRight" | "ArrowLeft" | "Home" | "End" | "PageUp" | "PageDown";

const CURSOR_FINAL: Partial<Record<BarKey, string>> = {
  ArrowUp: "A",
  ArrowDown: "B",
  ArrowRight: "C",
  ArrowLeft: "D",
  Home: "H",
  End: "F",
};

/**
 * The bytes for a special key. `appCursor` is DECCKM (application cursor keys, set by vim, less…),
 * which turns plain arrows into SS3 sequences. Modified cursor keys use xterm's `CSI 1 ; m X`.
 */
export function keySequence(key: BarKey, mods: Modifiers, appCursor: boolean): string {
  const modParam = 1 + (mods.alt ? 2 : 0) + (mods.ctrl ? 4 : 0);
  const final = CURSOR_FINAL[key];
  if (final) {
    if (modParam > 1) return `\x1b[1;${modParam}${final}`;
    return appCursor ? `\x1bO${final}` : `\x1b[${final}`;
  }
  const alt = mods.alt ? "\x1b" : "";
  switch (key) {
    case "Escape":
      return `${alt}\x1b`;
    case "Tab":
      return `${alt}\t`;
    case "PageUp":
      return modParam > 1 ? `\x1b[5;${modParam}~` : "\x1b[5~";
    case "PageDown":
      return modParam > 1 ? `\x1b[6;${modParam}~` : "\x1b[6~";
    default:
      return "";
  }
}

/** The control code for `ch` with Ctrl held, as xterm sends it, or null when there is none. */
export function ctrlCode(ch: string): string | null {
  if (ch.length !== 1) return null;
  const c = ch.toLowerCase().charCodeAt(0);
  if (c >= 0x61 && c <= 0x7a) return String.fromCharCode(c - 0x60); // a–z → ^A–^Z
  const special: Record<string, number> = {
    "@": 0x00, " ": 0x00, "2": 0x00,
    "[": 0x1b, "3": 0x1b,
    "\\": 0x1c, "4": 0x1c,
    "]": 0x1d, "5": 0x1d,
    "^": 0x1e, "6": 0x1e,
    "_": 0x1f, "-": 0x1f, "7": 0x1f, "/": 0x1f,
    "?": 0x7f, "8": 0x7f,
  };
  const code = special[ch];
  return code === undefined ? null : String.fromCharCode(code);
}

/**
 * Applies sticky modifiers to typed input: Ctrl turns the first character into its control code
 * (when it has one), Alt prefixes ESC (xterm's "meta sends escape"). Input of several characters
 * (a paste, an IME commit) only has its first character modified.
 */
export function applyModifiers(data: string, mods: Modifiers): string {
  if (data.length === 0 || (!mods.ctrl && !mods.alt)) return data;
  const first = String.fromCodePoint(data.codePointAt(0)!);
  const rest = data.slice(first.length);
  const head = mods.ctrl ? (ctrlCode(first) ?? first) : first;
  return (mods.alt ? "\x1b" : "") + head + rest;
}
