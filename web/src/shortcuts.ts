// Which keyboard shortcuts the terminal page takes for itself instead of sending them to the
// shell: copy and paste the way each platform expects, and search. Pure: no DOM access.

/** What a key event means to the page: an action, "native" (let the browser do it), or null. */
export type Shortcut = "copy" | "search" | "tab-focus" | "native" | null;

/** The subset of KeyboardEvent this looks at. */
export interface KeyLike {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
}

/**
 * Classifies a key event.
 * - Linux/Windows: Ctrl+Shift+C copies; Ctrl+Shift+V and Shift+Insert paste natively (the
 *   browser fires a paste event that xterm.js turns into input); plain Ctrl+C stays ^C.
 * - Apple: Cmd+C/Cmd+V go to the browser's native copy/paste events, which xterm.js handles.
 * - Both: Ctrl/Cmd+Shift+F opens search; Ctrl+Shift+M toggles whether Tab moves the focus out of
 *   the terminal (VS Code's key for the same toggle: a terminal needs Tab, so without it the
 *   keyboard could not leave; Ctrl+M is Enter to a shell, which has its own key).
 */
export function shortcutFor(ev: KeyLike, apple: boolean): Shortcut {
  const key = ev.key.toLowerCase();
  const primary = apple ? ev.metaKey : ev.ctrlKey;
  if ((ev.ctrlKey || ev.metaKey) && ev.shiftKey && !ev.altKey && key === "f") return "search";
  if (ev.ctrlKey && ev.shiftKey && !ev.altKey && !ev.metaKey && key === "m") return "tab-focus";
  if (apple) {
    if (ev.metaKey && !ev.ctrlKey && !ev.altKey && (key === "c" || key === "v")) return "native";
    return null;
  }
  if (primary && ev.shiftKey && !ev.altKey && key === "c") return "copy";
  if (primary && ev.shiftKey && !ev.altKey && key === "v") return "native";
  if (ev.shiftKey && !ev.ctrlKey && !ev.altKey && key === "insert") return "native";
  return null;
}
