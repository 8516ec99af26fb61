// The command history panel beside the terminal: commands the edge recorded for this session, with
// exit status, duration and directory, newest first. Servers that keep no history (404/501) get no
// panel and no button.
import type { Api, HistoryEntry } from "./api.ts";
import { button, h, relativeTime, replaceChildren } from "./dom.ts";
import { notify } from "./notices.ts";

/** How often an open panel refreshes, in milliseconds. */
export const HISTORY_REFRESH_MS = 5_000;
/** Most entries shown (the newest). */
export const HISTORY_SHOWN_MAX = 200;

function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "";
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1_000)} s`;
}

function statusBadge(e: HistoryEntry): HTMLElement {
  if (e.status === "running" || (e.exit_code === null && !e.finished_at)) {
    return h("span", { class: "badge badge-running" }, "running");
  }
  const code = e.exit_code ?? 0;
  return h("span", { class: `badge ${code === 0 ? "badge-ok" : "badge-fail"}`, title: `exit code ${code}` }, code === 0 ? "ok" : `exit ${code}`);
}

/** The history side panel of one terminal. */
export class HistoryPanel {
  readonly element: HTMLElement;
  private readonly list: HTMLElement;
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly api: Api,
    private readonly serverId: string,
    private readonly terminalId: number,
    private readonly onClose: () => void = () => {},
  ) {
    this.list = h("ol", { class: "history-list", reversed: true });
    this.element = h(
      "aside",
      // Focusable itself (tabindex -1), so opening the panel can move the keyboard into it.
      { class: "history-panel", "aria-label": "Command history", tabindex: -1, hidden: true },
      h(
        "header",
        { class: "panel-header" },
        h("h2", {}, "History"),
        button("Refresh history", "⟳", () => void this.refresh(), { class: "icon-button" }),
        button("Close history", "✕", () => this.close(), { class: "icon-button" }),
      ),
      this.list,
    );
    this.element.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        ev.preventDefault();
        ev.stopPropagation();
        this.close();
      }
    });
  }

  get isOpen(): boolean {
    return !this.element.hidden;
  }

  /** Whether this server keeps history for the session (it answers something other than 404/501). */
  async available(): Promise<boolean> {
    try {
      return (await this.api.history(this.serverId, this.terminalId)) !== null;
    } catch {
      return true; // A passing failure: keep the button, the panel shows the error when opened.
    }
  }

  /** Shows the panel and moves the focus into it (Esc closes it and gives the focus back). */
  open(): void {
    this.element.hidden = false;
    this.element.focus();
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), HISTORY_REFRESH_MS);
  }

  close(): void {
    if (this.element.hidden) return;
    this.element.hidden = true;
    clearInterval(this.timer);
    this.onClose();
  }

  toggle(): void {
    if (this.isOpen) this.close();
    else this.open();
  }

  dispose(): void {
    clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    let entries: HistoryEntry[] | null;
    try {
      entries = await this.api.history(this.serverId, this.terminalId);
    } catch (err) {
      replaceChildren(this.list, h("li", { class: "empty" }, `Could not load history: ${(err as Error).message}`));
      return;
    }
    if (entries === null) {
      replaceChildren(this.list, h("li", { class: "empty" }, "This server keeps no command history."));
      return;
    }
    if (entries.length === 0) {
      replaceChildren(this.list, h("li", { class: "empty" }, "No commands yet."));
      return;
    }
    const shown = entries.slice(-HISTORY_SHOWN_MAX).reverse();
    replaceChildren(this.list, ...shown.map((e) => this.item(e)));
  }

  private item(e: HistoryEntry): HTMLElement {
    const copy = async (): Promise<void> => {
      try {
        await navigator.clipboard.writeText(e.command);
        notify("Command copied.");
      } catch {
        notify("Copy failed: the browser refused clipboard access.", "error");
      }
    };
    return h(
      "li",
      { class: "history-item" },
      button(`Copy command: ${e.command}`, h("code", {}, e.command), () => void copy(), { class: "history-command" }),
      h(
        "div",
        { class: "history-meta" },
        statusBadge(e),
        e.duration_ms !== undefined && e.duration_ms !== null ? h("span", {}, formatDuration(e.duration_ms)) : null,
        e.started_at ? h("time", { datetime: e.started_at, title: e.started_at }, relativeTime(e.started_at)) : null,
        e.cwd ? h("span", { class: "history-cwd", title: e.cwd }, e.cwd) : null,
      ),
    );
  }
}
