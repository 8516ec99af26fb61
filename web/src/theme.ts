// Light and dark themes: follows prefers-color-scheme unless the user picked one with the toggle
// (the only thing this app keeps in localStorage). Sets `data-theme` on <html> for the CSS and
// gives xterm.js a matching palette.
import type { ITheme } from "@xterm/xterm";

/** The user's choice; "system" follows the OS. */
export type ThemePref = "system" | "light" | "dark";
/** The theme in effect. */
export type ThemeMode = "light" | "dark";

const STORAGE_KEY = "edgetty.theme";
const PREFS: readonly ThemePref[] = ["system", "light", "dark"];
const darkQuery = matchMedia("(prefers-color-scheme: dark)");
const listeners = new Set<(mode: ThemeMode) => void>();

/** The monospace stack for the terminal and code-ish text: system fonts only, nothing fetched. */
export const MONO_FONT = 'ui-monospace, "SF Mono", "Cascadia Mono", "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace';

function readPref(): ThemePref {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    return v === "light" || v === "dark" ? v : "system";
  } catch {
    return "system";
  }
}

let pref: ThemePref = readPref();

/** The stored preference. */
export function themePref(): ThemePref {
  return pref;
}

/** The theme in effect now. */
export function themeMode(): ThemeMode {
  if (pref !== "system") return pref;
  return darkQuery.matches ? "dark" : "light";
}

function apply(): void {
  const mode = themeMode();
  document.documentElement.dataset["theme"] = mode;
  for (const fn of listeners) fn(mode);
}

/** Moves to the next preference (system → light → dark → system) and returns it. */
export function cycleThemePref(): ThemePref {
  pref = PREFS[(PREFS.indexOf(pref) + 1) % PREFS.length]!;
  try {
    if (pref === "system") localStorage.removeItem(STORAGE_KEY);
    else localStorage.setItem(STORAGE_KEY, pref);
  } catch {
    // Storage may be disabled; the choice then lasts for this page only.
  }
  apply();
  return pref;
}

/** Calls `fn` on every theme change; returns an unsubscribe function. */
export function onThemeChange(fn: (mode: ThemeMode) => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Applies the theme now and follows the OS setting from here on. */
export function initTheme(): void {
  darkQuery.addEventListener("change", apply);
  apply();
}

const DARK: ITheme = {
  background: "#14161b",
  foreground: "#d8dee9",
  cursor: "#e5e9f0",
  cursorAccent: "#14161b",
  selectionBackground: "#3b4a66",
  black: "#1d2027", red: "#e06c75", green: "#98c379", yellow: "#e5c07b",
  blue: "#61afef", magenta: "#c678dd", cyan: "#56b6c2", white: "#c8ccd4",
  brightBlack: "#5c6370", brightRed: "#ef8891", brightGreen: "#b5e08f", brightYellow: "#f0d197",
  brightBlue: "#82c1f5", brightMagenta: "#d79bea", brightCyan: "#7fcfd8", brightWhite: "#ffffff",
};

const LIGHT: ITheme = {
  background: "#fbfbfa",
  foreground: "#24292f",
  cursor: "#24292f",
  cursorAccent: "#fbfbfa",
  selectionBackground: "#b6d3f5",
  black: "#24292f", red: "#c4232d", green: "#1a7f37", yellow: "#8a6100",
  blue: "#0550ae", magenta: "#8250df", cyan: "#0f7285", white: "#6e7781",
  brightBlack: "#57606a", brightRed: "#d73a49", brightGreen: "#22863a", brightYellow: "#a87600",
  brightBlue: "#0969da", brightMagenta: "#a475f9", brightCyan: "#1b8ba0", brightWhite: "#8c959f",
};

/** The xterm.js palette for a theme. */
export function xtermTheme(mode: ThemeMode): ITheme {
  return mode === "dark" ? DARK : LIGHT;
}

/** Search highlight colours (#RRGGBB, as the search addon requires) for a theme. */
export function searchColors(mode: ThemeMode): { match: string; active: string } {
  return mode === "dark" ? { match: "#4b3d12", active: "#8a6d1a" } : { match: "#fff1a8", active: "#ffc94d" };
}
