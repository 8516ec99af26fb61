// The home page: the servers this user may use with their agents' online state, each server's
// terminal sessions (open, watch read-only, delete) and a form to start a new one. Only what the
// caller's access allows is offered: on a server they may only watch, sessions open read-only and
// there is no create or delete (the edge enforces the same).
import { type Api, ApiError, canWrite, type CreateRequest, type Me, SHELLS, type ServerEntry, type SessionEntry } from "./api.ts";
import { button, h, relativeTime, replaceChildren } from "./dom.ts";
import { notify } from "./notices.ts";
import { terminalHref } from "./routes.ts";
import { kindFields } from "./session-kinds-form.ts";

/** How often the lists refresh while the page is visible, in milliseconds. */
export const SESSIONS_REFRESH_MS = 5_000;

type ServerState = { server: ServerEntry; sessions: SessionEntry[] | null; error: string | null };

/** Mounts the sessions page into `root`; returns its disposer. */
export function mountSessionsPage(root: HTMLElement, api: Api, me: Me): () => void {
  /** A read-only sign-in may only watch, whatever its grants say. */
  const writable = (server: ServerEntry) => !me.read_only && canWrite(server);
  const serverSelect = h("select", { name: "server", "aria-label": "Server", required: true });
  serverSelect.addEventListener("change", () => showChoice(serverSelect));
  const list = h("div", { class: "server-list", "aria-busy": "true" }, h("p", { class: "muted" }, "Loading servers…"));
  const form = createForm(api, serverSelect);
  const newSession = h("section", { class: "card new-session", "aria-labelledby": "new-session-title", hidden: true }, h("h2", { id: "new-session-title" }, "New terminal"), form);
  const page = h("main", { class: "sessions-page" }, newSession, list);
  root.replaceChildren(page);
  document.title = "Sessions — edgetty";

  let lastRendered = "";
  let stopped = false;

  async function refresh(): Promise<void> {
    let servers: ServerEntry[];
    try {
      servers = await api.servers();
    } catch (err) {
      if (!stopped && !(err instanceof ApiError && err.status === 401)) {
        list.setAttribute("aria-busy", "false");
        replaceChildren(list, h("p", { class: "error" }, `Could not load servers: ${(err as Error).message}`));
        lastRendered = "";
      }
      return;
    }
    const states = await Promise.all(
      servers.map(async (server): Promise<ServerState> => {
        if (server.access === null) return { server, sessions: null, error: "Only single terminals of this server are shared with you." };
        try {
          return { server, sessions: await api.sessions(server.id), error: null };
        } catch (err) {
          const offline = err instanceof ApiError && (err.status === 503 || err.status === 502);
          return { server, sessions: null, error: offline ? "The agent is offline." : (err as Error).message };
        }
      }),
    );
    if (stopped) return;
    // Unchanged data in the same minute: leave the DOM (and focus) alone.
    const key = JSON.stringify([states, Math.floor(Date.now() / 60_000)]);
    if (key === lastRendered) return;
    lastRendered = key;
    const creatable = servers.filter(writable);
    updateServerSelect(serverSelect, creatable);
    newSession.hidden = creatable.length === 0;
    list.setAttribute("aria-busy", "false");
    if (states.length === 0) {
      const none = me.role === "admin" ? "No servers yet: start an agent on a host to see it here." : "No servers are shared with you yet: ask an admin for a grant.";
      replaceChildren(list, h("p", { class: "muted" }, none));
      return;
    }
    replaceChildren(list, ...states.map((s) => serverCard(api, s, writable(s.server), () => void refresh())));
  }

  void refresh();
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") void refresh();
  }, SESSIONS_REFRESH_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

function updateServerSelect(select: HTMLSelectElement, servers: ServerEntry[]): void {
  const chosen = select.value;
  replaceChildren(
    select,
    ...servers.map((s) => h("option", { value: s.id, title: s.name || s.id }, `${s.name || s.id}${s.online === false && s.kind !== "url" ? " (offline)" : ""}`)),
  );
  const fallback = servers.find((s) => s.default) ?? servers[0];
  select.value = servers.some((s) => s.id === chosen) ? chosen : (fallback?.id ?? "");
  showChoice(select);
}

/** Puts the chosen option's full text in the select's title: a long name is cut short on screen (styles.css). */
function showChoice(select: HTMLSelectElement): void {
  select.title = select.selectedOptions[0]?.textContent ?? "";
}

function createForm(api: Api, serverSelect: HTMLSelectElement): HTMLFormElement {
  const shell = h("select", { name: "shell", "aria-label": "Shell" }, h("option", { value: "" }, "default shell"), ...SHELLS.map((s) => h("option", { value: s }, s)));
  const cwd = h("input", { name: "cwd", type: "text", placeholder: "home directory", "aria-label": "Working directory", autocomplete: "off", spellcheck: "false" });
  const cols = h("input", { name: "cols", type: "number", min: 1, max: 1000, placeholder: "fit", "aria-label": "Columns" });
  const rows = h("input", { name: "rows", type: "number", min: 1, max: 1000, placeholder: "fit", "aria-label": "Rows" });
  const id = h("input", { name: "terminal_id", type: "number", min: 1, max: 65535, placeholder: "next free", "aria-label": "Terminal id" });
  const cwdCreate = h("input", { name: "cwd_auto_create", type: "checkbox" });
  const ephemeral = h("input", { name: "ephemeral", type: "checkbox" });
  const submit = h("button", { type: "submit", class: "primary" }, "Start");
  const field = (label: string, control: HTMLElement): HTMLElement => h("label", { class: "field" }, h("span", {}, label), control);
  const kinds = kindFields();
  const shellField = field("Shell", shell);
  const cwdField = field("Directory", cwd);
  const cwdCreateField = h("label", { class: "check" }, cwdCreate, h("span", {}, "Create it if missing"));
  kinds.picker.addEventListener("change", () => {
    // The shell and directory are a local shell's; SSH and PID sessions ignore them.
    shellField.hidden = cwdField.hidden = cwdCreateField.hidden = kinds.kind() !== "local";
  });
  const form = h(
    "form",
    { class: "create-form", method: "post" },
    field("Server", serverSelect),
    kinds.picker,
    shellField,
    cwdField,
    cwdCreateField,
    kinds.panel,
    h(
      "details",
      { class: "more" },
      h("summary", {}, "More options"),
      h("div", { class: "more-fields" }, field("Columns", cols), field("Rows", rows), field("Id", id)),
    ),
    h("label", { class: "check" }, ephemeral, h("span", {}, "Ephemeral (removed when the last viewer leaves)")),
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const req: CreateRequest = {};
    if (kinds.kind() === "local") {
      if (shell.value) req.shell = shell.value;
      if (cwd.value.trim()) req.cwd = cwd.value.trim();
      if (req.cwd && cwdCreate.checked) req.cwd_auto_create = true;
    }
    if (cols.value && rows.value) {
      req.cols = Number(cols.value);
      req.rows = Number(rows.value);
    }
    if (id.value) req.terminal_id = id.value;
    if (ephemeral.checked) req.ephemeral = true;
    submit.disabled = true;
    try {
      await kinds.apply(req);
      // An SSH login or a display wait happens before the edge answers.
      if (req.ssh_host) submit.textContent = "Connecting…";
      const res = await api.createNew(serverSelect.value, req);
      if (res.status === "exists") notify(`Terminal #${res.terminal_id} already exists: opening it.`);
      location.hash = terminalHref(serverSelect.value, res.terminal_id);
    } catch (err) {
      notify(`Could not start a terminal: ${(err as Error).message}`, "error");
    } finally {
      submit.disabled = false;
      submit.textContent = "Start";
    }
  });
  return form;
}

/** "1d 2h", "3h 4m", "5m 6s": a duration in milliseconds, two units at most. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const [d, h, m] = [Math.floor(s / 86400), Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60)];
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return m > 0 ? `${m}m ${s % 60}s` : `${s}s`;
}

/** The agent's version, its uptime while online, or when it was last seen while offline. */
function agentLine(server: ServerEntry, online: boolean): HTMLElement | null {
  const agent = server.agent;
  if (!agent) return null;
  const parts: string[] = [];
  if (agent.version) parts.push(`agent ${agent.version}`);
  const started = agent.started_at ? Date.parse(agent.started_at) : NaN;
  const seen = agent.last_seen ? Date.parse(agent.last_seen) : NaN;
  if (online && !Number.isNaN(started)) parts.push(`up ${formatDuration(Date.now() - started)}`);
  if (!online) parts.push(Number.isNaN(seen) ? "never seen" : `last seen ${formatDuration(Date.now() - seen)} ago`);
  if (parts.length === 0) return null;
  return h(
    "span",
    { class: "muted agent-facts", ...(Number.isNaN(seen) ? {} : { title: `Last seen ${new Date(seen).toLocaleString()}` }) },
    parts.join(" · "),
  );
}

function serverCard(api: Api, state: ServerState, mayWrite: boolean, refresh: () => void): HTMLElement {
  const { server, sessions, error } = state;
  const online = server.online !== false;
  const header = h(
    "header",
    { class: "server-header" },
    h("h2", { class: "server-name", title: server.name || server.id }, server.name || server.id),
    // A URL server has no agent link: it is reached on each request, so it has no presence to show.
    server.kind === "url" ? h("span", { class: "badge" }, "URL server") : h("span", { class: `presence ${online ? "online" : "offline"}` }, online ? "agent online" : "agent offline"),
    server.default ? h("span", { class: "badge" }, "default") : null,
    mayWrite ? null : h("span", { class: "badge badge-readonly", title: "You may watch this server's terminals but not type in them" }, "watch only"),
    h("span", { class: "muted server-id", title: server.id }, server.id),
    agentLine(server, online),
  );
  let body: HTMLElement;
  if (error !== null) body = h("p", { class: "muted" }, error);
  else if (!sessions || sessions.length === 0) body = h("p", { class: "muted" }, "No sessions. Start one above.");
  else body = h("ul", { class: "session-list" }, ...sessions.map((s) => sessionRow(api, server.id, s, mayWrite, refresh)));
  return h("section", { class: "card server", "aria-label": `Server ${server.name || server.id}` }, header, body);
}

function sessionRow(api: Api, serverId: string, s: SessionEntry, mayWrite: boolean, refresh: () => void): HTMLElement {
  const last = s.command_history?.at(-1);
  const remove = async (): Promise<void> => {
    if (!confirm(`Delete terminal #${s.id} on ${serverId}? Its shell and everything running in it will be ended.`)) return;
    try {
      await api.remove(serverId, s.id);
      notify(`Terminal #${s.id} deleted.`);
    } catch (err) {
      notify(`Could not delete terminal #${s.id}: ${(err as Error).message}`, "error");
    }
    refresh();
  };
  return h(
    "li",
    { class: "session", "data-terminal-id": s.id },
    h(
      "a",
      {
        class: "session-main",
        href: terminalHref(serverId, s.id, !mayWrite),
        "aria-label": `${mayWrite ? "Open" : "Watch"} terminal ${s.id} (${s.shell} in ${s.cwd})`,
      },
      h("span", { class: "session-id" }, `#${s.id}`),
      h("span", { class: "session-shell" }, s.shell),
      h("span", { class: "session-cwd", title: s.cwd }, s.cwd),
      s.title ? h("span", { class: "session-title", title: s.title }, s.title) : null,
    ),
    h(
      "span",
      { class: "session-meta" },
      h("time", { datetime: s.started_at, title: `started ${s.started_at}` }, relativeTime(s.started_at)),
      h("span", { title: "connected clients" }, `${s.clients ?? 0} ${s.clients === 1 ? "client" : "clients"}`),
      s.ephemeral ? h("span", { class: "badge" }, "ephemeral") : null,
      s.agent_online === false ? h("span", { class: "badge badge-fail" }, "agent offline") : null,
      last ? h("code", { class: "session-last", title: `last command: ${last}` }, last) : null,
    ),
    h(
      "span",
      { class: "session-actions" },
      mayWrite ? h("a", { class: "text-button", href: terminalHref(serverId, s.id), "aria-label": `Open terminal ${s.id}` }, "Open") : null,
      h("a", { class: "text-button", href: terminalHref(serverId, s.id, true), "aria-label": `Watch terminal ${s.id} read-only` }, "Watch"),
      mayWrite ? button(`Delete terminal ${s.id}`, "Delete", () => void remove(), { class: "text-button danger" }) : null,
    ),
  );
}
