// The admin's servers page: add a server (showing, once, its agent token inside the exact command
// `edgetty server add` prints), or a URL server; list every server with its agent's state, version
// and last contact; disable, enable or remove one.
import { agentCommand } from "../../shared/agent-command.ts";
import type { AdminContext } from "./admin-client.ts";
import { Actions, adminForm, clipped, field, maxChars, ListArea, section, table, timeCell } from "./admin-ui.ts";
import type { ServerEntry } from "./api.ts";
import { h, replaceChildren } from "./dom.ts";
import { notify } from "./notices.ts";

/** How often the server list refreshes while the page is visible (agents come and go), in milliseconds. */
export const SERVERS_REFRESH_MS = 5_000;

/** The server id rule (shared/validation.ts), as an HTML pattern. */
const SERVER_ID_PATTERN = "[a-z0-9][a-z0-9\\-]{0,62}";

/** Mounts the servers page into `root`; returns its disposer. */
export function mountAdminServers(root: HTMLElement, ctx: AdminContext): () => void {
  const { client } = ctx;
  const list = new ListArea("servers", () => client.servers(), (servers) => render(servers));
  const actions = new Actions(() => void list.reload());
  const added = h("div", { class: "added-secret", hidden: true });

  const id = maxChars(h("input", { name: "id", type: "text", required: true, pattern: SERVER_ID_PATTERN, autocomplete: "off", spellcheck: "false" }), 63);
  const name = maxChars(h("input", { name: "name", type: "text", autocomplete: "off" }), 200);
  const url = h("input", { name: "url", type: "url", autocomplete: "off", spellcheck: "false", placeholder: "https://terminal.example:8000" });
  const key = h("input", { name: "key", type: "password", autocomplete: "off" });
  const add = adminForm(
    "Add a server",
    "Add server",
    [
      field("Id", id, "Lower-case letters, digits and -; at most 63 characters."),
      field("Name", name),
      h(
        "details",
        { class: "more" },
        h("summary", {}, "URL server (an existing Open Terminal server)"),
        h("div", { class: "admin-fields" }, field("URL", url), field("API key", key, "The Open Terminal server's own key; stored encrypted.")),
      ),
    ],
    async () => {
      const sid = id.value.trim();
      if ((url.value === "") !== (key.value === "")) throw new Error("A URL server needs both its URL and its API key.");
      // Adding an id again would replace its agent token: that is not what this form is for.
      const existing = await client.servers();
      if (existing.some((s) => s.id === sid)) throw new Error(`Server '${sid}' exists already: remove it first to add it again.`);
      const server = await client.addServer(sid, name.value.trim());
      if (url.value) {
        try {
          await client.setServerUrl(sid, url.value, key.value);
        } catch (err) {
          // Not left behind as an agent server whose token nobody saw.
          await client.removeServer(sid).catch(() => {});
          throw err;
        }
        showAdded(h("p", {}, `URL server ${sid} added: the edge reaches it at ${url.value}.`));
      } else {
        showAgentCommand(server.id, server.token);
      }
      add.form.reset();
      void list.reload();
      return `Server ${sid} added.`;
    },
  );

  function showAdded(...content: Node[]): void {
    replaceChildren(added, ...content);
    added.hidden = false;
  }

  function hideAdded(): void {
    added.hidden = true;
    replaceChildren(added);
  }

  function showAgentCommand(sid: string, token: string): void {
    const command = agentCommand(ctx.edge, sid, token);
    const code = h("code", { class: "agent-command" }, command);
    showAdded(
      h("p", {}, `Run this on the host of ${sid}. It holds the server's agent token, which is shown only now.`),
      h("pre", { class: "secret-box", "aria-label": `Agent command for ${sid}` }, code),
      h(
        "div",
        { class: "admin-fields" },
        h("button", { type: "button", class: "text-button", onclick: () => void copy(command) }, "Copy command"),
        h("button", { type: "button", class: "text-button", onclick: () => hideAdded() }, "Done, hide it"),
      ),
    );
  }

  function render(servers: ServerEntry[]): Node {
    return table(
      "Servers",
      ["Id", "Name", "Kind", "State", "Agent", "Version", "Last seen", "Actions"],
      servers.map((s) => {
        const enabled = s.enabled !== false;
        return [
          clipped(s.id, "code"),
          clipped(s.name),
          s.kind === "url" ? "URL server" : "agent",
          h("span", { class: enabled ? "badge badge-ok" : "badge badge-fail" }, enabled ? "enabled" : "disabled"),
          s.kind === "url" ? "—" : h("span", { class: `presence ${s.online ? "online" : "offline"}` }, s.online ? "online" : "offline"),
          s.agent?.version ?? "—",
          s.kind === "url" ? "—" : timeCell(s.agent?.last_seen ?? null),
          h(
            "span",
            { class: "row-actions" },
            actions.button(`${enabled ? "Disable" : "Enable"} server ${s.id}`, enabled ? "Disable" : "Enable", () => client.setServerEnabled(s.id, !enabled)),
            actions.button(`Remove server ${s.id}`, "Remove", () => client.removeServer(s.id), {
              danger: true,
              confirm: `Remove server ${s.id}? Its agent can no longer connect; its terminals become unreachable.`,
            }),
          ),
        ];
      }),
      "No servers.",
    );
  }

  add.form.append(added);
  root.replaceChildren(add.form, section("Servers", actions.region, list.element));
  void list.reload();
  const timer = setInterval(() => {
    if (document.visibilityState === "visible") void list.reload({ background: true });
  }, SERVERS_REFRESH_MS);
  return () => {
    clearInterval(timer);
    list.stop();
  };
}

/** Copies `text` to the clipboard, saying whether it worked. */
export async function copy(text: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(text);
    notify("Copied.");
  } catch {
    notify("Could not copy: select the text and copy it yourself.", "error");
  }
}
