// The share page (/share#server=…&terminal=…&token=…): one terminal, read-only, opened by a share
// link's token with no sign-in. The token authenticates the WebSocket as a subprotocol
// ("edgetty.share", token) and the HTTP looks as a bearer token; it never goes in a URL the
// browser sends. The edge lets it reach only that terminal's read routes, and closes the socket
// when the link expires or is revoked; the page then says so.
import type { ServerFrame } from "../../shared/links/client.ts";
import { Api } from "./api.ts";
import { type Phase, type ProbeResult, TerminalConnection } from "./connection.ts";
import { h } from "./dom.ts";
import type { ShareLink } from "./routes.ts";
import { TerminalView } from "./terminal-view.ts";

/** The subprotocol a share link's WebSocket offers beside its token (edge/share-links.ts). */
export const SHARE_WS_PROTOCOL = "edgetty.share";

/** Mounts the share page for `link` (null: a broken link) into `root`; returns its disposer. */
export function mountSharePage(root: HTMLElement, link: ShareLink | null): () => void {
  if (!link) {
    root.replaceChildren(
      h("main", { class: "login-page" }, h("div", { class: "card" }, h("p", { class: "error", role: "alert" }, "This share link is incomplete: ask for the whole link again."))),
    );
    return () => {};
  }
  const { serverId, terminalId, token } = link;
  const prefix = Api.serverPrefix(serverId);
  let joins = 0;

  const status = h("span", { class: "conn-status", role: "status", "data-state": "connecting" }, "connecting…");
  const name = h("span", { class: "term-name" }, `${serverId} · #${terminalId}`);
  const badge = h("span", { class: "badge badge-readonly", title: "A shared terminal: you can watch but not type" }, "read-only");
  const banner = h("div", { class: "exit-banner", role: "alert", hidden: true });
  const host = h("div", { class: "term-host" });
  const page = h(
    "section",
    { class: "terminal-page share-page", "aria-label": `Shared terminal ${terminalId} on ${serverId}` },
    h("div", { class: "toolbar", role: "toolbar", "aria-label": "Shared terminal" }, name, badge, status),
    h("div", { class: "term-body" }, h("div", { class: "term-stage" }, banner, host)),
  );
  root.replaceChildren(page);

  /** A look at the terminal's HTTP routes with the link's token. */
  const look = (path: string): Promise<Response> => fetch(`${prefix}${path}`, { headers: { Authorization: `Bearer ${token}` }, cache: "no-store", credentials: "omit" });

  const conn = new TerminalConnection({
    url: () => {
      const proto = location.protocol === "https:" ? "wss:" : "ws:";
      return `${proto}//${location.host}${prefix}/api/v1/terminal/ws?terminal_id=${terminalId}&readonly=1`;
    },
    protocols: () => [SHARE_WS_PROTOCOL, token],
    probe,
    onFrame,
    onPhase: renderPhase,
  });
  const view = new TerminalView(host, {
    readonly: true,
    onInput: () => {},
    onBinary: () => {},
    onResize: () => {},
    onFlow: (paused) => conn.setPaused(paused),
    onOverflow: () => conn.resync(),
  });
  view.fit();
  conn.start();

  window.edgettyDebug = {
    screenText: () => view.screenText(),
    size: () => view.size,
    phase: () => conn.phase,
    readonly: () => true,
    joins: () => joins,
    resyncs: () => 0,
    renderer: () => view.renderer,
    onRender: (listener) => {
      const subscription = view.term.onRender(() => listener());
      return () => subscription.dispose();
    },
  };

  function onFrame(frame: ServerFrame): void {
    switch (frame.t) {
      case "info":
        joins++;
        name.textContent = `${serverId} · #${terminalId} · ${frame.info.shell}`;
        document.title = `${frame.info.title || frame.info.shell} (shared) — edgetty`;
        {
          // The PTY's size, at its place in the stream (see terminal-page.ts applyInfo).
          const size = { cols: frame.info.cols, rows: frame.info.rows };
          view.afterOutput(() => view.setReadonly(true, size));
        }
        return;
      case "output":
        return view.write(frame.data);
      case "exit":
        return show("Session ended", "The shared terminal's shell has exited.");
      default:
        return; // A viewer types nothing, so READ_ONLY errors do not arise; titles and pongs need nothing.
    }
  }

  async function probe(): Promise<ProbeResult> {
    try {
      const res = await look("/api/v1/terminal/sessions");
      if (res.status === 401) return "unauthorized";
      if (res.status === 403) return "forbidden";
      if (res.status === 503 || res.status === 502) return "agent-offline";
      if (!res.ok) return "network";
      const mine = ((await res.json()) as { id: number; agent_online?: boolean }[]).find((s) => s.id === terminalId);
      if (!mine) return "gone";
      return mine.agent_online === false ? "agent-offline" : "alive";
    } catch {
      return "network";
    }
  }

  function renderPhase(phase: Phase): void {
    const text =
      phase.kind === "open"
        ? "watching"
        : phase.kind === "connecting"
          ? "connecting…"
          : phase.kind === "waiting"
            ? "reconnecting…"
            : { exit: "exited", gone: "session gone", forbidden: "link no longer valid", unauthorized: "link expired or revoked", closed: "closed" }[phase.why];
    status.textContent = text;
    status.dataset["state"] = phase.kind === "ended" ? "ended" : phase.kind;
    if (phase.kind === "ended" && (phase.why === "unauthorized" || phase.why === "forbidden")) {
      show("Link no longer valid", "This share link has expired or was revoked. Ask whoever shared it for a new one.");
    } else if (phase.kind === "ended" && phase.why === "gone") {
      show("Session gone", "The shared terminal no longer exists.");
    }
  }

  function show(title: string, text: string): void {
    if (!banner.hidden) return;
    banner.replaceChildren(h("strong", {}, title), h("span", {}, text));
    banner.hidden = false;
  }

  return () => {
    conn.close();
    view.dispose();
    delete window.edgettyDebug;
  };
}
