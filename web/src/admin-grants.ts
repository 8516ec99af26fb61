// The admin's grants page: give a user or a group `read` or `write` access to a whole server or to
// one terminal of it, list grants, remove one.
import type { AdminContext, Grant, Group, User } from "./admin-client.ts";
import { Actions, adminForm, field, fillIds, ListArea, section, select, table, timeCell } from "./admin-ui.ts";
import type { ServerEntry } from "./api.ts";
import { h } from "./dom.ts";

type Lists = [Grant[], ServerEntry[], User[], Group[]];

/** Mounts the grants page into `root`; returns its disposer. */
export function mountAdminGrants(root: HTMLElement, ctx: AdminContext): () => void {
  const { client } = ctx;
  let users: User[] = [];
  let groups: Group[] = [];
  const list = new ListArea<Lists>(
    "grants",
    () => Promise.all([client.grants(), client.servers(), client.users(), client.groups()]),
    (lists) => render(lists),
  );
  const actions = new Actions(() => void list.reload());

  const server = h("select", { name: "server_id", required: true });
  const terminal = h("input", { name: "terminal_id", type: "number", min: 1, max: 65535, placeholder: "whole server" });
  const kind = select("principal_type", [
    ["group", "group"],
    ["user", "user"],
  ]);
  const who = h("select", { name: "principal_id", required: true });
  const access = select("access", [
    ["write", "write: open, type, create, delete"],
    ["read", "read: watch only"],
  ]);
  kind.addEventListener("change", () => fillWho());
  const add = adminForm(
    "Grant access",
    "Grant",
    [field("Server", server), field("Terminal", terminal, "Empty: the whole server."), field("To a", kind), field("Who", who), field("Access", access)],
    async () => {
      // Number() would read "abc" as NaN, sent as null: the whole server.
      const id = terminal.value.trim();
      if (id && !/^\d{1,5}$/.test(id)) throw new Error("Terminal: a number from 1 to 65535, or empty for the whole server.");
      const grant = await client.putGrant({
        server_id: server.value,
        terminal_id: id ? Number(id) : 0,
        principal_type: kind.value === "user" ? "user" : "group",
        principal_id: who.value,
        access: access.value === "read" ? "read" : "write",
      });
      terminal.value = "";
      void list.reload();
      return `Granted ${grant.access} on ${where(grant)} to ${grant.principal_type} ${grant.principal_id}.`;
    },
  );

  function fillWho(): void {
    if (kind.value === "user") fillIds(who, users.map((u) => u.id), "no users yet");
    else fillIds(who, groups.map((g) => g.id), "no groups yet");
  }

  function render([grants, servers, u, g]: Lists): Node {
    users = u;
    groups = g;
    fillIds(server, servers.map((s) => s.id), "no servers yet");
    fillWho();
    return table(
      "Grants",
      ["Server", "Terminal", "Who", "Access", "Created", "Actions"],
      grants.map((gr) => [
        h("code", {}, gr.server_id),
        gr.terminal_id === 0 ? h("span", { class: "muted" }, "whole server") : `#${gr.terminal_id}`,
        `${gr.principal_type} ${gr.principal_id}`,
        h("span", { class: gr.access === "write" ? "badge badge-running" : "badge" }, gr.access),
        timeCell(gr.created_at),
        actions.button(`Remove the grant of ${where(gr)} to ${gr.principal_type} ${gr.principal_id}`, "Remove", () => client.removeGrant(gr), { danger: true }),
      ]),
      "No grants yet: users see no servers until they or one of their groups hold one.",
    );
  }

  root.replaceChildren(add.form, section("Grants", actions.region, list.element));
  void list.reload();
  return () => list.stop();
}

function where(grant: Pick<Grant, "server_id" | "terminal_id">): string {
  return grant.terminal_id === 0 ? grant.server_id : `${grant.server_id} terminal #${grant.terminal_id}`;
}
