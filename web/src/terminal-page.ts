// The terminal page: one session's terminal with its toolbar (connection state, read-only badge,
// find, history, download, screenshot), exit banner, history panel and phone key bar, wired to a
// self-healing connection.
import type { ExitReason, ServerFrame, SessionInfo } from "../../shared/links/client.ts";
import { type Api, ApiError, SHELLS } from "./api.ts";
import { type Phase, type ProbeResult, TerminalConnection } from "./connection.ts";
import { button, h, isApple, replaceChildren } from "./dom.ts";
import { HistoryPanel } from "./history-panel.ts";
import { INPUT_QUEUE_MAX_BYTES } from "./input-queue.ts";
import { KeyBar } from "./key-bar.ts";
import { notify } from "./notices.ts";
import { terminalHref } from "./routes.ts";
import { SearchBar } from "./search-bar.ts";
import { shareButton } from "./share-dialog.ts";
import { shortcutFor } from "./shortcuts.ts";
import { showScreenshot } from "./screenshot-dialog.ts";
import { TerminalView } from "./terminal-view.ts";


export interface TerminalPageOptions {
  api: Api;
  serverId: string;
  terminalId: number;
  readonly: boolean;
  /**
   * Whether the caller may change things on this server (false for a `read` grant or a read-only
   * sign-in): when false the page offers no write actions (new terminal, raw download). Default true.
   */
  canWrite?: boolean;
  /** Called when the edge says the cookie is no longer valid. */
  onSignedOut(): void;
}

/** What the page exposes on `window.edgettyDebug` for tests and the browser console. */
export interface TerminalDebug {
  /** The visible screen, one line per row. */
  screenText(): string;
  /** The terminal's size in cells. */
  size(): { cols: number; rows: number };
  phase(): Phase;
  readonly(): boolean;
  /** How many times the edge has accepted this page (INFO frames received). */
  joins(): number;
  /** How many times output overflowed and the page rejoined for a repaint. */
  resyncs(): number;
  /** Which renderer draws the terminal. */
  renderer(): "dom" | "webgl";
  /** Calls `listener` each time xterm.js has drawn rows (the bench's keystroke-to-paint); returns an unsubscriber. */
  onRender(listener: () => void): () => void;
}

declare global {
  interface Window {
    edgettyDebug?: TerminalDebug;
  }
}

const encoder = new TextEncoder();

/** Mounts the terminal page into `root`; returns its disposer. */
export function mountTerminalPage(root: HTMLElement, opts: TerminalPageOptions): () => void {
  const { api, serverId, terminalId } = opts;
  const canWrite = opts.canWrite ?? true;
  let readonly = opts.readonly;
  let exited = false;
  let joins = 0;
  let resyncs = 0;
  let shell = "";
  let cwd = "";
  /** The next INFO is this socket's first (its join), not a resize by another client. */
  let awaitingJoin = true;
  /** The probe found no such server (a mistyped or removed server in the page's address). */
  let missingServer = false;
  /** The session's size from the session list, which a read-only viewer mirrors. */

  const status = h("span", { class: "conn-status", role: "status", "data-state": "connecting" }, "connecting…");
  const retry = button("Reconnect now", "Retry now", () => conn.reconnectNow(), { class: "text-button", hidden: true });
  const sizeBadge = h("span", { class: "badge badge-size", hidden: true, title: "Another writer resized the terminal; type to fit it to this window again" });
  const roBadge = h("span", { class: "badge badge-readonly", hidden: !readonly, title: "You can watch but not type" }, "read-only");
  const name = h("span", { class: "term-name" }, `${serverId} · #${terminalId}`);
  const host = h("div", { class: "term-host" });
  const exitBanner = h("div", { class: "exit-banner", role: "alert", hidden: true });
  const stage = h("div", { class: "term-stage" }, exitBanner, host);
  const history = new HistoryPanel(api, serverId, terminalId, () => view.focus());
  // Created first (started last) so the view's resize callbacks always find it.
  const conn = new TerminalConnection({
    url: () => api.wsUrl(serverId, terminalId, { readonly, ...view.size }),
    probe,
    onFrame,
    onPhase: (phase) => {
      if (phase.kind === "connecting") awaitingJoin = true;
      renderPhase(phase);
      if (phase.kind === "ended" && (phase.why === "gone" || phase.why === "forbidden")) showGone(phase.why);
      if (phase.kind === "ended" && phase.why === "unauthorized") opts.onSignedOut();
    },
  });

  const view = new TerminalView(host, {
    readonly,
    onInput: (data) => sendInput(keyBar.consume(data)),
    onBinary: (bytes) => sendBytes(bytes),
    onResize: (size) => {
      if (!readonly && !view.following) conn.resize(size);
    },
    onFlow: (paused) => {
      conn.setPaused(paused);
      renderPhase(conn.phase);
    },
    onOverflow: () => {
      resyncs++;
      conn.resync();
    },
  });
  const search = new SearchBar(view.search, () => view.focus());
  const keyBar = new KeyBar({
    send: (data) => sendInput(data),
    appCursor: () => view.term.modes.applicationCursorKeysMode,
    paste: () => void view.pasteFromClipboard(),
    refocus: () => view.focus(),
  });
  keyBar.element.hidden = readonly;

  const historyButton = button("Command history", h("span", { class: "label" }, "History"), () => history.toggle(), {
    class: "tool-button",
    hidden: true,
    "data-icon": "history",
  });
  const toolbar = h(
    "div",
    { class: "toolbar", role: "toolbar", "aria-label": "Terminal" },
    h("a", { href: "#/", class: "icon-button back", "aria-label": "Back to sessions", title: "Back to sessions" }, "←"),
    name,
    roBadge,
    sizeBadge,
    status,
    retry,
    h("span", { class: "spacer" }),
    // History first: it appears once the server says it keeps history, and the buttons after it
    // are anchored to the right, so its arrival moves nothing else.
    historyButton,
    button("Find in terminal (Ctrl+Shift+F)", h("span", { class: "label" }, "Find"), () => search.toggle(), {
      class: "tool-button",
      "data-icon": "find",
    }),
    h(
      "a",
      {
        class: "tool-button",
        href: api.rawDownloadUrl(serverId, terminalId),
        download: `edgetty-${serverId}-${terminalId}.txt`,
        "aria-label": "Download raw output",
        title: "Download raw output",
        "data-icon": "download",
        // The raw output route needs write access at the edge (edge/proxy-checks.ts).
        hidden: !canWrite,
      },
      h("span", { class: "label" }, "Download"),
    ),
    button("Screenshot", h("span", { class: "label" }, "Screenshot"), () => void screenshot(), {
      class: "tool-button",
      "data-icon": "screenshot",
    }),
  );
  // Share: writers only (making a link needs write access at the edge; a watch page offers none).
  if (canWrite && !readonly) toolbar.append(shareButton(api, serverId, terminalId, () => view.focus()));
  const page = h(
    "section",
    { class: "terminal-page", "aria-label": `Terminal ${terminalId} on ${serverId}` },
    toolbar,
    search.element,
    h("div", { class: "term-body" }, stage, history.element),
    keyBar.element,
  );
  root.replaceChildren(page);
  view.fit();

  conn.start();
  view.focus();
  void history.available().then((ok) => (historyButton.hidden = !ok));

  const countdown = setInterval(() => {
    if (conn.phase.kind === "waiting" && conn.phase.retryAt !== null) renderPhase(conn.phase);
  }, 1_000);

  // Ctrl/Cmd+Shift+F opens search wherever the focus is on this page.
  const onKeyDown = (ev: KeyboardEvent): void => {
    const action = shortcutFor(ev, isApple());
    if (action === "search") {
      ev.preventDefault();
      search.open();
    } else if (action === "tab-focus") {
      ev.preventDefault();
      view.tabMovesFocus = !view.tabMovesFocus;
      notify(view.tabMovesFocus ? "Tab now moves the focus (Ctrl+Shift+M gives it back to the shell)." : "Tab goes to the shell again (Ctrl+Shift+M to move the focus with it).");
    }
  };
  document.addEventListener("keydown", onKeyDown);

  window.edgettyDebug = {
    screenText: () => view.screenText(),
    size: () => view.size,
    phase: () => conn.phase,
    readonly: () => readonly,
    joins: () => joins,
    resyncs: () => resyncs,
    renderer: () => view.renderer,
    onRender: (listener) => {
      const subscription = view.term.onRender(() => listener());
      return () => subscription.dispose();
    },
  };

  function sendInput(data: string): void {
    sendBytes(encoder.encode(data));
  }

  function sendBytes(data: Uint8Array): void {
    if (readonly || data.byteLength === 0) return;
    // Typing takes the size back from another writer: the PTY is resized to this window first.
    if (view.following) follow(null);
    const outcome = conn.sendInput(data);
    if (outcome === "refused") {
      notify(
        exited || conn.phase.kind === "ended"
          ? "Input not sent: the session has ended."
          : `Input not sent: not connected and ${INPUT_QUEUE_MAX_BYTES / 1024} KiB of typing is already waiting.`,
        "error",
      );
    } else if (outcome === "queued") {
      renderPhase(conn.phase);
    }
  }

  function onFrame(frame: ServerFrame): void {
    switch (frame.t) {
      case "info":
        return applyInfo(frame.info);
      case "output":
        // A repaint (after INFO) starts with ESC c, a full reset that clears screen and scrollback
        // in stream order; output that merely continues (the agent came back without a gap) does not.
        return view.write(frame.data);
      case "title":
        return setTitle(frame.title);
      case "exit":
        return showExit(frame.exit.exit_code, frame.exit.signal, frame.exit.error?.message ?? endedBecause(frame.exit.reason));
      case "error":
        if (frame.error.code === "AGENT_OFFLINE") {
          renderPhase(conn.phase);
          if (conn.inputMayBeLost()) notify("The agent went offline: what you typed just now may not have arrived.", "error");
        } else if (frame.error.code === "READ_ONLY") {
          notify("This view is read-only: input was not sent.", "error");
        } else {
          notify(frame.error.message || frame.error.code, "error");
        }
        return;
      case "pong":
        return;
    }
  }

  function applyInfo(info: SessionInfo): void {
    joins++;
    readonly = info.readonly;
    shell = info.shell;
    cwd = info.cwd;
    roBadge.hidden = !readonly;
    keyBar.element.hidden = readonly;
    const size = { cols: info.cols, rows: info.rows };
    const join = awaitingJoin;
    awaitingJoin = false;
    if (readonly) {
      // A viewer mirrors the PTY's size, which INFO carries at its place in the stream: before the
      // repaint on a join, and wherever a writer resized the PTY (docs/protocol.md). Applied once
      // the output before it is drawn, so that output wraps at the width it was written for.
      view.afterOutput(() => view.setReadonly(true, size));
    } else if (join) {
      view.setReadonly(false);
      follow(null);
    } else {
      // Another client resized the PTY: show its size (exact, rather than this window's grid over
      // a smaller screen) until this page's user types.
      view.afterOutput(() => follow(size.cols === view.fitSize.cols && size.rows === view.fitSize.rows ? null : size));
    }
    name.textContent = `${serverId} · #${terminalId} · ${info.shell}`;
    setTitle(info.title || `${info.shell} ${info.cwd}`);
    // Joining, a writer sizes the PTY to its window (the last writer to join or type decides).
    if (!readonly && join && (info.cols !== view.size.cols || info.rows !== view.size.rows)) conn.resize(view.size);
  }

  /** Shows the PTY's size another client chose (`size`), or fits this window again (`null`). */
  function follow(size: { cols: number; rows: number } | null): void {
    view.followSize(size);
    sizeBadge.hidden = size === null;
    if (size) sizeBadge.textContent = `${size.cols}×${size.rows}: sized by another writer`;
  }

  function setTitle(title: string): void {
    document.title = `${title} — edgetty`;
    name.title = title;
  }

  /** A button that hides the banner, to read the output under it (the page stays ended). */
  function hideBanner(): HTMLButtonElement {
    return button("Hide this message", "×", () => {
      exitBanner.hidden = true;
      view.focus();
    }, { class: "icon-button" });
  }

  /** `text` with its first letter upper-case (an edge's error message is a sentence's middle). */
  function capitalized(text: string): string {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  /** The words for an EXIT's `reason` (the edge ended the session, not the shell). */
  function endedBecause(reason: ExitReason | undefined): string | undefined {
    switch (reason) {
      case "deleted":
        return "The terminal was closed (deleted from the sessions list or the API).";
      case "idle":
        return "The terminal was closed after being idle with no one attached.";
      case "lost":
        return "The host's agent restarted, and its shells ended with it.";
      default:
        return undefined;
    }
  }

  function showExit(code: number, signal: number, why?: string): void {
    exited = true;
    view.setReadonly(true, view.size);
    keyBar.element.hidden = true;
    const how = signal ? `was killed by signal ${signal}` : `exited with code ${code}`;
    replaceChildren(
      exitBanner,
      h("strong", {}, "Session ended"),
      h("span", {}, why ? capitalized(why) : `The shell ${how}.`),
      h("a", { href: "#/", class: "text-button" }, "Back to sessions"),
      canWrite ? button("Start a new terminal like this one", "New terminal", () => void startAnother(), { class: "text-button" }) : null,
      hideBanner(),
    );
    exitBanner.hidden = false;
    exitBanner.dataset["exitCode"] = String(code);
  }

  async function startAnother(): Promise<void> {
    try {
      // An SSH or PID session's "shell" is not a local shell: start the default one then.
      const local = (SHELLS as readonly string[]).includes(shell);
      const res = await api.createNew(serverId, { shell: local ? shell : undefined, cwd: local && cwd ? cwd : undefined, ...view.size });
      location.hash = terminalHref(serverId, res.terminal_id);
    } catch (err) {
      notify(`Could not start a terminal: ${(err as Error).message}`, "error");
    }
  }

  function renderPhase(phase: Phase): void {
    let text: string;
    let state: string = phase.kind;
    retry.hidden = phase.kind !== "waiting";
    switch (phase.kind) {
      case "connecting":
        text = phase.attempt === 0 ? "connecting…" : "reconnecting…";
        break;
      case "open":
        text = conn.agentOffline ? "agent offline — typing is held" : view.paused ? "catching up…" : "connected";
        if (conn.agentOffline) state = "agent-offline";
        break;
      case "waiting": {
        const secs = phase.retryAt === null ? 0 : Math.max(0, Math.ceil((phase.retryAt - Date.now()) / 1000));
        const when = phase.retryAt === null ? "" : ` — retrying in ${secs} s`;
        text = {
          offline: "offline — waiting for the network",
          "agent-offline": `agent offline${when}`,
          network: `cannot reach the edge${when}`,
          dropped: `reconnecting${when}`,
        }[phase.why];
        state = phase.why === "agent-offline" ? "agent-offline" : "waiting";
        break;
      }
      case "ended":
        text = { exit: "exited", gone: "session gone", forbidden: "no access", unauthorized: "signed out", closed: "closed" }[phase.why];
        break;
    }
    if (conn.queuedBytes > 0 && (phase.kind !== "open" || conn.agentOffline)) text += ` · ${conn.queuedBytes} B typed, waiting`;
    status.textContent = text;
    status.dataset["state"] = state;
  }

  function showGone(why: "gone" | "forbidden"): void {
    if (exited) return;
    exited = true;
    view.setReadonly(true, view.size);
    keyBar.element.hidden = true;
    const [title, text] =
      why === "forbidden"
        ? ["No access", `You may no longer use server ${serverId}.`]
        : missingServer
          ? ["No such server", `There is no server named ${serverId}.`]
          : joins > 0
            ? ["Session gone", `Terminal #${terminalId} no longer exists on ${serverId}.`]
            : ["No such terminal", `Terminal #${terminalId} does not exist on ${serverId}; it may have ended.`];
    replaceChildren(
      exitBanner,
      h("strong", {}, title),
      h("span", {}, text),
      h("a", { href: "#/", class: "text-button" }, "Back to sessions"),
      why === "gone" && !missingServer && canWrite && !readonly ? button("Start a new terminal on this server", "Start a new one", () => void startAnother(), { class: "text-button" }) : null,
      hideBanner(),
    );
    exitBanner.hidden = false;
    exitBanner.dataset["gone"] = missingServer ? "server" : "terminal";
  }

  async function probe(): Promise<ProbeResult> {
    try {
      const sessions = await api.sessions(serverId);
      const mine = sessions.find((s) => s.id === terminalId);
      if (mine) return mine.agent_online === false ? "agent-offline" : "alive";
      const server = (await api.servers()).find((s) => s.id === serverId);
      return server && server.online === false ? "agent-offline" : "gone";
    } catch (err) {
      if (!(err instanceof ApiError)) return "network";
      if (err.status === 401) return "unauthorized";
      if (err.status === 503 || err.status === 502) return "agent-offline";
      if (err.status === 403) return "forbidden";
      if (err.status === 404) {
        missingServer = err.code === "SERVER_NOT_FOUND";
        return "gone";
      }
      return "network";
    }
  }

  async function screenshot(): Promise<void> {
    try {
      showScreenshot(await api.screenshot(serverId, terminalId), `edgetty-${serverId}-${terminalId}.png`);
    } catch (err) {
      notify(`Screenshot failed: ${(err as Error).message}`, "error");
    }
  }

  return () => {
    clearInterval(countdown);
    document.removeEventListener("keydown", onKeyDown);
    conn.close();
    history.dispose();
    view.dispose();
    delete window.edgettyDebug;
    document.title = "edgetty";
  };
}
