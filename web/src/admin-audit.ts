// The admin's audit log page: who did what, to which server or terminal, when and from where,
// newest first, a page at a time (the edge pages by event id: `before` the oldest one shown).
import { AUDIT_PAGE_SIZE, type AdminContext, type AuditPage } from "./admin-client.ts";
import { ListArea, section, table, timeCell } from "./admin-ui.ts";
import { h } from "./dom.ts";

/** Mounts the audit page into `root`; returns its disposer. */
export function mountAdminAudit(root: HTMLElement, ctx: AdminContext): () => void {
  /** The `before` of each page shown so far: the last is the current page (null: the newest). */
  const trail: (number | null)[] = [null];
  let next: number | null = null;
  const list = new ListArea<AuditPage>("the audit log", () => ctx.client.audit(trail.at(-1) ?? null), (page) => render(page));
  const newest = h("button", { type: "button", class: "text-button" }, "Newest");
  const newer = h("button", { type: "button", class: "text-button" }, "← Newer");
  const older = h("button", { type: "button", class: "text-button" }, "Older →");
  const where = h("span", { class: "muted", "aria-live": "polite" });
  const go = (change: () => void) => {
    change();
    void list.reload();
  };
  newest.addEventListener("click", () => go(() => trail.splice(1)));
  newer.addEventListener("click", () => go(() => trail.length > 1 && trail.pop()));
  older.addEventListener("click", () => go(() => next !== null && trail.push(next)));

  function render(page: AuditPage): Node {
    next = page.next_before;
    newest.disabled = newer.disabled = trail.length === 1;
    older.disabled = next === null;
    where.textContent = `Page ${trail.length} · ${page.events.length} events, ${AUDIT_PAGE_SIZE} a page`;
    return table(
      "Audit events, newest first",
      ["Id", "When", "Who", "Action", "Target", "From", "Detail"],
      page.events.map((ev) => [
        String(ev.id),
        timeCell(ev.at),
        h("code", {}, ev.actor),
        ev.action,
        ev.server_id ? `${ev.server_id}${ev.terminal_id ? ` #${ev.terminal_id}` : ""}` : "—",
        ev.ip || "—",
        h("span", { class: "audit-detail" }, ev.detail),
      ]),
      "No events.",
    );
  }

  root.replaceChildren(section("Audit log", h("nav", { class: "pager", "aria-label": "Audit log pages" }, newest, newer, older, where), list.element));
  void list.reload();
  return () => list.stop();
}
