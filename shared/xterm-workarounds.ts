/**
 * Workarounds for xterm.js faults that program output can trigger, shared by the agent's
 * headless terminals and the web client's terminal (both xterm.js 6). Typed structurally, so this
 * module imports neither package.
 */

/** The parts of an xterm.js Terminal (headless or browser) the workarounds use. */
export interface XtermLike {
  readonly rows: number;
  readonly cols: number;
  readonly buffer: { readonly active: { readonly cursorX: number; readonly cursorY: number } };
  readonly parser: {
    registerCsiHandler(id: { final: string }, callback: (params: (number | number[])[]) => boolean): { dispose(): void };
  };
}

/**
 * xterm.js 6.0.0 throws from its parse timer on `ESC[1J` (erase above) with the cursor in the
 * bottom-right cell: it clears the wrap flag of the row below the screen, which does not exist.
 * The throw kills a Node process (the agent, with every session on the host) and leaves a
 * browser terminal's write queue stuck. In that position the sequence erases the whole screen,
 * so it is handled as `ESC[2J` is (the core's own handler, called directly).
 */
export function guardEraseAbove(term: XtermLike): void {
  term.parser.registerCsiHandler({ final: "J" }, (params) => {
    const b = term.buffer.active;
    if (params[0] !== 1 || b.cursorY !== term.rows - 1 || b.cursorX < term.cols - 1) return false;
    const input = (term as unknown as { _core?: { _inputHandler?: { eraseInDisplay?(p: { params: number[]; length: number }, protect: boolean): boolean } } })._core?._inputHandler;
    if (typeof input?.eraseInDisplay !== "function") return false;
    return input.eraseInDisplay({ params: [2], length: 1 }, false);
  });
}
