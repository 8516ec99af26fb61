// The xterm.js terminal on the page: addons (fit, web links, unicode 11, search, WebGL when the
// browser has a GPU for it), theme, copy/paste shortcuts, and output paced by flow-control.ts. It
// knows nothing of sockets: the terminal page feeds it output and takes its input.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import { SearchAddon } from "@xterm/addon-search";
import { Unicode11Addon } from "@xterm/addon-unicode11";
import { WebLinksAddon } from "@xterm/addon-web-links";
import type { TerminalSize } from "../../shared/links/client.ts";
import { UNICODE_VERSION } from "../../shared/screen.ts";
import { guardEraseAbove } from "../../shared/xterm-workarounds.ts";
import { CursorBlinker } from "./cursor-blink.ts";
import { OutputPump } from "./flow-control.ts";
import { notify } from "./notices.ts";
import { binaryStringBytes } from "./binary-input.ts";
import { isApple } from "./dom.ts";
import { shortcutFor } from "./shortcuts.ts";
import { MONO_FONT, onThemeChange, themeMode, xtermTheme } from "./theme.ts";

/** Lines kept above the screen. */
export const SCROLLBACK_LINES = 5_000;
/** Delay between the last container resize and the fit, in milliseconds. */
export const FIT_DEBOUNCE_MS = 60;
/** Font size on wide screens and on phones, in CSS pixels. */
export const FONT_SIZE_PX = 14;
export const FONT_SIZE_NARROW_PX = 12;
/** Quiet time after a selection changes before it is copied, in milliseconds. */
export const SELECTION_COPY_DEBOUNCE_MS = 200;

export interface TerminalViewOptions {
  readonly: boolean;
  /** Text typed or pasted (to be sent UTF-8 encoded). */
  onInput(data: string): void;
  /** Bytes the terminal reports as binary (legacy mouse reports), sent as they are. */
  onBinary(data: Uint8Array): void;
  /** The terminal's size changed (fitting to the window). */
  onResize(size: TerminalSize): void;
  /** Output backlog crossed a water mark: pause or resume the edge. */
  onFlow(paused: boolean): void;
  /** Output came faster than it could be shown and some was dropped: rejoin for a repaint. */
  onOverflow(): void;
}

const SOFTWARE_RENDERER = /swiftshader|llvmpipe|softpipe|software|basic render/i;

/** Whether this browser offers WebGL 2 backed by a GPU (not a software rasterizer). */
function hardwareWebgl(): boolean {
  const gl = document.createElement("canvas").getContext("webgl2", { failIfMajorPerformanceCaveat: true });
  if (!gl) return false;
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  const renderer = info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : "";
  gl.getExtension("WEBGL_lose_context")?.loseContext();
  return !SOFTWARE_RENDERER.test(renderer);
}

/** An xterm.js terminal mounted in `container`. */
export class TerminalView {
  readonly term: Terminal;
  readonly search = new SearchAddon({ highlightLimit: 500 });
  private readonly fitAddon = new FitAddon();
  private readonly pump: OutputPump;
  private readonly observer: ResizeObserver;
  private readonly unsubscribeTheme: () => void;
  private readonly blinker: CursorBlinker;
  private readonly domListeners = new AbortController();
  private fitTimer: ReturnType<typeof setTimeout> | undefined;
  private selectionTimer: ReturnType<typeof setTimeout> | undefined;
  private disposed = false;
  private rendererName: "dom" | "webgl" = "dom";
  private fixedSize: TerminalSize | null = null;
  private readonlyNow: boolean;

  constructor(
    private readonly container: HTMLElement,
    private readonly opts: TerminalViewOptions,
  ) {
    this.readonlyNow = opts.readonly;
    const narrow = matchMedia("(max-width: 600px)").matches;
    this.term = new Terminal({
      allowProposedApi: true, // unicode11's activeVersion and search decorations are proposed API
      fontFamily: MONO_FONT,
      fontSize: narrow ? FONT_SIZE_NARROW_PX : FONT_SIZE_PX,
      scrollback: SCROLLBACK_LINES,
      cursorBlink: !opts.readonly,
      disableStdin: opts.readonly,
      theme: xtermTheme(themeMode()),
      rightClickSelectsWord: false,
    });
    const term = this.term;
    this.pump = new OutputPump((data, parsed) => term.write(data, parsed), {
      onFlow: opts.onFlow,
      onOverflow: opts.onOverflow,
    });
    term.loadAddon(this.fitAddon);
    term.loadAddon(this.search);
    term.loadAddon(new WebLinksAddon((_ev, uri) => window.open(uri, "_blank", "noopener,noreferrer")));
    term.loadAddon(new Unicode11Addon());
    term.unicode.activeVersion = UNICODE_VERSION; // the agent's headless terminal uses the same
    guardEraseAbove(term); // `ESC[1J` in the bottom-right cell would stop this terminal's output
    term.open(container);
    // The DOM renderer's cursor blinks by timer, not by a per-frame animation (cursor-blink.ts).
    this.blinker = new CursorBlinker(term.element!);
    term.onRender(() => this.blinker.restart());
    const signal = this.domListeners.signal;
    term.textarea?.addEventListener("focus", () => this.updateBlink(), { signal });
    term.textarea?.addEventListener("blur", () => this.updateBlink(), { signal });
    void this.loadWebgl();

    const input = (data: string): void => {
      if (!this.readonlyNow) opts.onInput(data);
    };
    // Said to screen readers where the focus is: how the keyboard leaves a terminal that takes Tab.
    term.textarea?.setAttribute("aria-description", "Ctrl+Shift+M: Tab moves the focus out of the terminal, or back to the shell");
    term.onData(input);
    term.onBinary((data) => {
      if (!this.readonlyNow) opts.onBinary(binaryStringBytes(data));
    });
    term.onResize(({ cols, rows }) => opts.onResize({ cols, rows }));
    term.attachCustomKeyEventHandler((ev) => this.onKey(ev));
    term.onSelectionChange(() => {
      clearTimeout(this.selectionTimer);
      this.selectionTimer = setTimeout(() => this.copySelectionQuietly(), SELECTION_COPY_DEBOUNCE_MS);
    });
    this.unsubscribeTheme = onThemeChange((mode) => (term.options.theme = xtermTheme(mode)));

    this.observer = new ResizeObserver(() => {
      clearTimeout(this.fitTimer);
      this.fitTimer = setTimeout(() => this.fit(), FIT_DEBOUNCE_MS);
    });
    this.observer.observe(container);
    this.fit();
  }

  /** The current size in cells. */
  get size(): TerminalSize {
    return { cols: this.term.cols, rows: this.term.rows };
  }

  /** The size in cells that fits the window (the current size when it cannot be measured). */
  get fitSize(): TerminalSize {
    const proposed = this.fitAddon.proposeDimensions();
    return proposed && proposed.cols > 0 && proposed.rows > 0 ? { cols: proposed.cols, rows: proposed.rows } : this.size;
  }

  /** Whether output is flowing too fast to render (the edge is paused). */
  get paused(): boolean {
    return this.pump.paused;
  }

  /** Writes output from the edge, paced by how fast xterm.js parses it. */
  write(data: Uint8Array): void {
    this.pump.push(data);
  }

  /** Runs `action` once the output written so far has been parsed, before any written after. */
  afterOutput(action: () => void): void {
    this.pump.then(action);
  }

  /** Read-only viewers mirror the session's size instead of fitting to the window. */
  setReadonly(readonly: boolean, sessionSize?: TerminalSize): void {
    this.readonlyNow = readonly;
    this.term.options.disableStdin = readonly;
    this.term.options.cursorBlink = !readonly;
    this.fixedSize = readonly && sessionSize ? sessionSize : null;
    this.updateBlink();
    this.fit();
  }

  /**
   * A writer shows the PTY's size another client chose (`size`) instead of fitting to the window,
   * until it takes the size back (`null`: fit again, which resizes the PTY through `onResize`).
   */
  followSize(size: TerminalSize | null): void {
    if (this.readonlyNow) return;
    this.fixedSize = size;
    this.fit();
  }

  /**
   * Whether Tab and Shift+Tab move the focus out of the terminal (as in the rest of the page)
   * instead of reaching the shell; toggled by Ctrl+Shift+M on the terminal page.
   */
  tabMovesFocus = false;

  /** Whether this writer shows a size another client chose (followSize). */
  get following(): boolean {
    return !this.readonlyNow && this.fixedSize !== null;
  }

  /** Fits to the container (or applies the fixed size of a read-only viewer or a following writer). */
  fit(): void {
    if (!this.container.isConnected || this.container.clientWidth === 0) return;
    if (this.fixedSize) {
      const { cols, rows } = this.fixedSize;
      if (cols !== this.term.cols || rows !== this.term.rows) this.term.resize(cols, rows);
      return;
    }
    this.fitAddon.fit();
  }

  focus(): void {
    this.term.focus();
  }

  /** Copies the selection to the clipboard; says so when it cannot. */
  async copySelection(): Promise<void> {
    const text = this.term.getSelection();
    if (!text) return;
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      notify("Copy failed: the browser refused clipboard access.", "error");
    }
  }

  /** Pastes clipboard text as input (for the key bar; keyboard paste uses the native event). */
  async pasteFromClipboard(): Promise<void> {
    try {
      const text = await navigator.clipboard.readText();
      if (text) this.term.paste(text);
    } catch {
      notify(`Paste failed: allow clipboard access or press ${isApple() ? "⌘V" : "Ctrl+Shift+V"}.`, "error");
    }
  }

  /** Which renderer draws the terminal. */
  get renderer(): "dom" | "webgl" {
    return this.rendererName;
  }

  /** The visible screen as text, one line per row (for tests and the console). */
  screenText(): string {
    const buf = this.term.buffer.active;
    const lines: string[] = [];
    for (let y = 0; y < this.term.rows; y++) lines.push(buf.getLine(buf.viewportY + y)?.translateToString(true) ?? "");
    return lines.join("\n");
  }

  dispose(): void {
    this.disposed = true;
    this.blinker.stop();
    this.domListeners.abort();
    clearTimeout(this.fitTimer);
    clearTimeout(this.selectionTimer);
    this.observer.disconnect();
    this.unsubscribeTheme();
    this.term.dispose();
  }

  private onKey(ev: KeyboardEvent): boolean {
    // With "Tab moves focus" on, Tab and Shift+Tab are the browser's: they leave the terminal.
    if (this.tabMovesFocus && ev.key === "Tab" && !ev.ctrlKey && !ev.altKey && !ev.metaKey) return false;
    const action = shortcutFor(ev, isApple());
    if (action === null) return true;
    if (ev.type === "keydown") {
      if (action === "copy") {
        ev.preventDefault();
        void this.copySelection();
      } else if (action === "search" || action === "tab-focus") {
        ev.preventDefault(); // The page's own keydown listener acts on these.
      }
    }
    // "native": xterm.js skips the key and the browser's copy/paste event does the work.
    return false;
  }

  /** Blinks the DOM renderer's cursor while the terminal has focus and takes input. */
  private updateBlink(): void {
    const want = !this.disposed && this.rendererName === "dom" && !this.readonlyNow && document.activeElement === this.term.textarea;
    if (want) this.blinker.start();
    else this.blinker.stop();
  }

  /** Selection copy (as X11 terminals do): best effort, silent when the clipboard says no. */
  private copySelectionQuietly(): void {
    const text = this.term.getSelection();
    if (text && navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
  }

  /**
   * WebGL renderer when the browser has a hardware one; the DOM renderer otherwise, silently.
   * Software WebGL (SwiftShader, llvmpipe) parses-and-paints about 3x slower than the DOM
   * renderer, and that speed is what bounds how fast Ctrl-C shows under a flood.
   */
  private async loadWebgl(): Promise<void> {
    try {
      if (!hardwareWebgl()) return;
      const { WebglAddon } = await import("@xterm/addon-webgl");
      if (this.disposed) return;
      const webgl = new WebglAddon();
      webgl.onContextLoss(() => {
        webgl.dispose();
        this.rendererName = "dom";
        this.updateBlink();
      });
      this.term.loadAddon(webgl);
      this.rendererName = "webgl";
      this.updateBlink();
    } catch {
      // The context failed: the DOM renderer stays.
    }
  }
}
