// The key bar for phones and tablets: the keys a touch keyboard lacks (Esc, Tab, arrows, a few
// symbols), sticky Ctrl and Alt that modify the next key typed, and paste. Tapping it never takes
// focus from the terminal, so the on-screen keyboard stays up.
import { button, h } from "./dom.ts";
import { type BarKey, type Modifiers, applyModifiers, keySequence } from "./keys.ts";

export interface KeyBarOptions {
  /** Bytes to send to the terminal as input. */
  send(data: string): void;
  /** Whether the terminal is in application cursor mode (DECCKM). */
  appCursor(): boolean;
  /** Paste from the clipboard. */
  paste(): void;
  /** Give focus back to the terminal. */
  refocus(): void;
}

const KEYS: { key: BarKey; text: string; label: string }[] = [
  { key: "Escape", text: "Esc", label: "Escape" },
  { key: "Tab", text: "Tab", label: "Tab" },
];
const ARROWS: { key: BarKey; text: string; label: string }[] = [
  { key: "ArrowLeft", text: "←", label: "Left arrow" },
  { key: "ArrowUp", text: "↑", label: "Up arrow" },
  { key: "ArrowDown", text: "↓", label: "Down arrow" },
  { key: "ArrowRight", text: "→", label: "Right arrow" },
];
const SYMBOLS = ["|", "~", "-", "/"];

/** The key bar; `consume` applies its sticky modifiers to keyboard input. */
export class KeyBar {
  readonly element: HTMLElement;
  private mods: Modifiers = { ctrl: false, alt: false };
  private readonly ctrlButton: HTMLButtonElement;
  private readonly altButton: HTMLButtonElement;

  constructor(private readonly opts: KeyBarOptions) {
    const key = (k: { key: BarKey; text: string; label: string }): HTMLButtonElement =>
      button(k.label, k.text, () => this.sendKey(k.key), { class: "key" });
    this.ctrlButton = button("Ctrl (applies to the next key)", "Ctrl", () => this.toggle("ctrl"), {
      class: "key key-mod",
      "aria-pressed": "false",
    });
    this.altButton = button("Alt (applies to the next key)", "Alt", () => this.toggle("alt"), {
      class: "key key-mod",
      "aria-pressed": "false",
    });
    this.element = h(
      "div",
      { class: "key-bar", role: "toolbar", "aria-label": "Extra keys" },
      ...KEYS.map(key),
      this.ctrlButton,
      this.altButton,
      ...ARROWS.map(key),
      ...SYMBOLS.map((s) => button(`Type ${s}`, s, () => this.sendText(s), { class: "key" })),
      button("Paste", "Paste", () => opts.paste(), { class: "key key-wide" }),
    );
    // Keep focus (and the on-screen keyboard) on the terminal while tapping keys.
    for (const type of ["pointerdown", "mousedown"] as const) {
      this.element.addEventListener(type, (ev) => {
        if ((ev.target as Element).closest("button")) ev.preventDefault();
      });
    }
  }

  /** Applies and releases the sticky modifiers on input typed on the keyboard. */
  consume(data: string): string {
    if (!this.mods.ctrl && !this.mods.alt) return data;
    const out = applyModifiers(data, this.mods);
    this.release();
    return out;
  }

  private sendKey(key: BarKey): void {
    this.opts.send(keySequence(key, this.mods, this.opts.appCursor()));
    this.release();
    this.opts.refocus();
  }

  private sendText(text: string): void {
    this.opts.send(this.consume(text));
    this.opts.refocus();
  }

  private toggle(which: keyof Modifiers): void {
    this.mods = { ...this.mods, [which]: !this.mods[which] };
    this.render();
    this.opts.refocus();
  }

  private release(): void {
    this.mods = { ctrl: false, alt: false };
    this.render();
  }

  private render(): void {
    this.ctrlButton.setAttribute("aria-pressed", String(this.mods.ctrl));
    this.altButton.setAttribute("aria-pressed", String(this.mods.alt));
  }
}
