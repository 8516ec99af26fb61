// The admin's tokens page: create a user's API token (shown once, right here, and never again),
// list tokens without their secrets, revoke one (the next request with it is refused).
import type { AdminContext, TokenInfo, User } from "./admin-client.ts";
import { copy } from "./admin-servers.ts";
import { Actions, adminForm, clipped, field, maxChars, fillIds, ListArea, section, table, timeCell } from "./admin-ui.ts";
import { h, replaceChildren } from "./dom.ts";

/** Lifetime the form proposes, in days (the edge's default). */
export const TOKEN_DAYS_DEFAULT = 90;
/** Longest lifetime the edge allows, in days (edge/identities.ts TOKEN_TTL_MAX_S). */
export const TOKEN_DAYS_MAX = 366;

/** Mounts the tokens page into `root`; returns its disposer. */
export function mountAdminTokens(root: HTMLElement, ctx: AdminContext): () => void {
  const { client } = ctx;
  let users: User[] = [];
  const list = new ListArea<[TokenInfo[], User[]]>("tokens", () => Promise.all([client.tokens(), client.users()]), ([tokens, u]) => render(tokens, u));
  const actions = new Actions(() => void list.reload());
  const created = h("div", { class: "added-secret", hidden: true });

  const user = h("select", { name: "user_id", required: true });
  const name = maxChars(h("input", { name: "name", type: "text", autocomplete: "off" }), 200);
  const days = h("input", { name: "ttl_days", type: "number", min: 1, max: TOKEN_DAYS_MAX, value: TOKEN_DAYS_DEFAULT, required: true });
  const readOnly = h("input", { name: "read_only", type: "checkbox" });
  const admin = h("input", { name: "admin", type: "checkbox" });
  const add = adminForm(
    "Create a token",
    "Create token",
    [
      field("User", user),
      field("Name", name, "What the token is for."),
      field("Lifetime (days)", days),
      h("label", { class: "check" }, readOnly, h("span", {}, "Read-only (watch only, everywhere)")),
      h("label", { class: "check" }, admin, h("span", {}, "Admin token (the user must be an admin)")),
    ],
    async () => {
      const token = await client.createToken({
        user_id: user.value,
        ttl_s: Number(days.value) * 86_400,
        scopes: readOnly.checked ? ["read-only"] : [],
        ...(name.value.trim() ? { name: name.value.trim() } : {}),
        ...(admin.checked ? { role: "admin" as const } : {}),
      });
      showToken(token.id, token.user_id, token.token, token.expires_at);
      name.value = "";
      readOnly.checked = admin.checked = false;
      void list.reload();
      return `Token ${token.id} created for ${token.user_id}.`;
    },
  );
  add.form.append(created);

  function showToken(id: string, owner: string, secret: string, expires: number): void {
    const value = h("input", { type: "text", readonly: true, value: secret, class: "secret-value", "aria-label": `New token for ${owner}`, spellcheck: "false" });
    replaceChildren(
      created,
      h("p", {}, h("strong", {}, `Token ${id} for ${owner}`), `, valid until ${new Date(expires).toLocaleString()}. It is shown only now: copy it and give it to ${owner}.`),
      value,
      h(
        "div",
        { class: "admin-fields" },
        h("button", { type: "button", class: "text-button", onclick: () => void copy(secret) }, "Copy token"),
        h("button", { type: "button", class: "text-button", onclick: () => hideToken() }, "Done, hide it"),
      ),
    );
    created.hidden = false;
    value.select();
  }

  function hideToken(): void {
    created.hidden = true;
    replaceChildren(created);
  }

  function render(tokens: TokenInfo[], u: User[]): Node {
    users = u;
    fillIds(user, users.map((x) => x.id), "no users yet: add one first");
    const now = Date.now();
    return table(
      "Tokens",
      ["Id", "User", "Name", "Role", "Scopes", "Expires", "Last used", "Created", "Actions"],
      tokens.map((t) => [
        h("code", {}, t.id),
        t.user_id,
        t.name ? clipped(t.name) : h("span", { class: "muted" }, "—"),
        t.role,
        t.scopes.join(", ") || "—",
        t.expires_at <= now ? h("span", { class: "badge badge-fail" }, "expired") : timeCell(t.expires_at),
        timeCell(t.last_used_at),
        timeCell(t.created_at),
        actions.button(`Revoke token ${t.id} of ${t.user_id}`, "Revoke", () => client.revokeToken(t.id), {
          danger: true,
          confirm: `Revoke token ${t.id} of ${t.user_id}? Programs using it stop working at their next request.`,
        }),
      ]),
      "No tokens.",
    );
  }

  root.replaceChildren(add.form, section("Tokens", actions.region, list.element));
  void list.reload();
  return () => list.stop();
}
