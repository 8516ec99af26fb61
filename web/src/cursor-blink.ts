// The DOM renderer's cursor blink, without a frame every 16 ms.
//
// xterm.js's DOM renderer blinks the cursor with an infinite CSS animation of `background-color`,
// which Chromium runs on the main thread: while the terminal has focus the page asks for a frame 60
// times a second. Chromium's scheduler (the DeferRendererTasksAfterInput feature, on by default)
// holds back every other task of the page after a key press that leaves a frame pending, until that
// frame has run — so the WebSocket message carrying the echo waited for the next frame, and xterm.js
// drew it one frame later still: a keystroke showed two frames (~33 ms) after the key, every time.
//
// styles.css keeps that animation paused; this module picks its phase (on or off) with a class on
// the terminal element, toggled by a timer twice a second, and turns the cursor back on after every
// render (typing, output), as the animation restarting on a redrawn cursor did. The WebGL renderer
// blinks with its own timers and needs none of this. The selectors in styles.css are xterm.js 6's
// DOM renderer classes (`xterm-rows`, `xterm-cursor`, `xterm-cursor-blink`); the browser test
// "blinks the cursor by a timer" fails if an upgrade changes them.

/** How long the blinking cursor stays on, then off, in milliseconds (xterm.js: a 1 s period). */
export const CURSOR_BLINK_HALF_PERIOD_MS = 500;
/** Class on the terminal element while the blinking cursor is in its off phase (styles.css). */
export const CURSOR_OFF_CLASS = "edgetty-cursor-off";

/** Blinks the DOM renderer's cursor with a timer. `element` is the terminal's `.xterm` element. */
export class CursorBlinker {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;

  constructor(private readonly element: HTMLElement) {}

  /** Whether the timer is running. */
  get active(): boolean {
    return this.running;
  }

  /** Starts blinking (no-op when already blinking), the cursor on first. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.restart();
  }

  /** Shows the cursor and starts a fresh on phase; no-op while stopped. Cheap: call it per render. */
  restart(): void {
    if (!this.running) return;
    if (this.element.classList.contains(CURSOR_OFF_CLASS)) this.element.classList.remove(CURSOR_OFF_CLASS);
    clearTimeout(this.timer);
    this.timer = setTimeout(this.toggle, CURSOR_BLINK_HALF_PERIOD_MS);
  }

  /** Stops blinking, leaving the cursor on. */
  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.element.classList.remove(CURSOR_OFF_CLASS);
  }

  private readonly toggle = (): void => {
    this.element.classList.toggle(CURSOR_OFF_CLASS);
    this.timer = setTimeout(this.toggle, CURSOR_BLINK_HALF_PERIOD_MS);
  };
}
