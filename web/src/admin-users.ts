// The admin's users page: add a user, list users, disable or enable one, remove one (with their
// tokens, memberships and grants).
import type { AdminContext, User } from "./admin-client.ts";
import { Actions, adminForm, clipped, field, maxChars, ListArea, section, select, table, timeCell } from "./admin-ui.ts";
import { h } from "./dom.ts";

/** The user and group id rule (edge/identities.ts), as an HTML pattern. */
export const PRINCIPAL_ID_PATTERN = "[a-z0-9][a-z0-9._\\-]{0,62}";
/** What the id fields say about that rule. */
export const PRINCIPAL_ID_HELP = "Lower-case letters, digits, '.', '_' and '-'; at most 63 characters.";

/** Mounts the users page into `root`; returns its disposer. */
export function mountAdminUsers(root: HTMLElement, ctx: AdminContext): () => void {
  const { client } = ctx;
  const list = new ListArea("users", () => client.users(), (users) => render(users));
  const actions = new Actions(() => void list.reload());

  const id = maxChars(h("input", { name: "id", type: "text", required: true, pattern: PRINCIPAL_ID_PATTERN, autocomplete: "off", spellcheck: "false" }), 63);
  const name = maxChars(h("input", { name: "name", type: "text", autocomplete: "off" }), 200);
  const email = h("input", { name: "email", type: "email", autocomplete: "off", spellcheck: "false" });
  const role = select("role", [
    ["user", "user (reaches granted servers)"],
    ["admin", "admin (everything)"],
  ]);
  const add = adminForm(
    "Add a user",
    "Add user",
    [field("Id", id, PRINCIPAL_ID_HELP), field("Name", name), field("Email", email, "Optional; maps a Cloudflare Access identity to this user."), field("Role", role)],
    async () => {
      const user = await client.addUser({
        id: id.value.trim(),
        role: role.value === "admin" ? "admin" : "user",
        ...(name.value.trim() ? { name: name.value.trim() } : {}),
        ...(email.value.trim() ? { email: email.value.trim() } : {}),
      });
      add.form.reset();
      void list.reload();
      return `User ${user.id} added. Give them a token on the Tokens page.`;
    },
  );

  function render(users: User[]): Node {
    return table(
      "Users",
      ["Id", "Name", "Email", "Role", "State", "Created", "Actions"],
      users.map((u) => [
        clipped(u.id, "code"),
        clipped(u.name),
        u.email ? clipped(u.email) : "—",
        u.role,
        h("span", { class: u.disabled ? "badge badge-fail" : "badge badge-ok" }, u.disabled ? "disabled" : "active"),
        timeCell(u.created_at),
        h(
          "span",
          { class: "row-actions" },
          actions.button(`${u.disabled ? "Enable" : "Disable"} user ${u.id}`, u.disabled ? "Enable" : "Disable", () => client.updateUser(u.id, { disabled: !u.disabled })),
          actions.button(`Remove user ${u.id}`, "Remove", () => client.removeUser(u.id), {
            danger: true,
            confirm: `Remove user ${u.id} with their tokens, group memberships and grants?`,
          }),
        ),
      ]),
      "No users yet.",
    );
  }

  root.replaceChildren(add.form, section("Users", actions.region, list.element));
  void list.reload();
  return () => list.stop();
}
