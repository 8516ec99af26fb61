// The admin pages (admins only; main.ts never mounts them for a user, and the edge refuses every
// /api/v1/admin/ call from a user anyway): a tab bar of sections and the chosen section.
import { mountAdminAudit } from "./admin-audit.ts";
import { AdminClient, type AdminContext } from "./admin-client.ts";
import { mountAdminGrants } from "./admin-grants.ts";
import { mountAdminGroups } from "./admin-groups.ts";
import { mountAdminServers } from "./admin-servers.ts";
import { mountAdminTokens } from "./admin-tokens.ts";
import { mountAdminUsers } from "./admin-users.ts";
import type { Api } from "./api.ts";
import { h } from "./dom.ts";
import { adminHref } from "./routes.ts";

/** The admin sections, in tab order: route name, tab text, mount. */
export const ADMIN_SECTIONS = [
  ["servers", "Servers", mountAdminServers],
  ["users", "Users", mountAdminUsers],
  ["groups", "Groups", mountAdminGroups],
  ["grants", "Grants", mountAdminGrants],
  ["tokens", "Tokens", mountAdminTokens],
  ["audit", "Audit log", mountAdminAudit],
] as const satisfies readonly (readonly [string, string, (root: HTMLElement, ctx: AdminContext) => () => void])[];

/** Mounts admin section `name` (the first one when unknown) into `root`; returns its disposer. */
export function mountAdminPage(root: HTMLElement, api: Api, name: string): () => void {
  const chosen = ADMIN_SECTIONS.find(([id]) => id === name) ?? ADMIN_SECTIONS[0];
  const [id, title, mount] = chosen;
  const body = h("div", { class: "admin-body" });
  const tabs = h(
    "nav",
    { class: "admin-tabs", "aria-label": "Admin" },
    ...ADMIN_SECTIONS.map(([sid, text]) => h("a", { href: adminHref(sid), class: "admin-tab", "aria-current": sid === id ? "page" : false }, text)),
  );
  root.replaceChildren(h("main", { class: "admin-page" }, h("h1", {}, `Admin · ${title}`), tabs, body));
  document.title = `${title} — edgetty admin`;
  return mount(body, { client: new AdminClient(api), edge: location.origin });
}
