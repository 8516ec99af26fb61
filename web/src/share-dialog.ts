// The terminal page's Share dialog (writers only): create a read-only link to this terminal with an
// expiry, show its URL once with a Copy button, list the terminal's live links with their expiry and
// revoke them (the share-link routes of docs/api.md). A modal <dialog>: Esc closes it, and the focus
// goes back to the terminal.
import type { Api, ShareLinkInfo } from "./api.ts";
import { button, h, replaceChildren } from "./dom.ts";
import { notify } from "./notices.ts";

/** The expiries offered, in seconds (the edge allows 1 s to 7 days); the first is the default. */
export const SHARE_EXPIRIES: readonly (readonly [number, string])[] = [
  [3_600, "1 hour"],
  [86_400, "1 day"],
  [604_800, "7 days"],
];

/** "in 59 min", "in 23 h", "in 6 d": how long until epoch-ms `at`. */
export function expiresIn(at: number, now = Date.now()): string {
  const min = Math.max(0, Math.round((at - now) / 60_000));
  if (min < 1) return "in less than a minute";
  if (min < 90) return `in ${min} min`;
  const hrs = Math.round(min / 60);
  return hrs < 36 ? `in ${hrs} h` : `in ${Math.round(hrs / 24)} d`;
}

/**
 * The toolbar's Share button for terminal `terminalId` on `serverId`: it opens the share dialog;
 * `refocus` gives the focus back to the terminal when the dialog closes.
 */
export function shareButton(api: Api, serverId: string, terminalId: number, refocus: () => void): HTMLButtonElement {
  const el = button("Share a read-only link", h("span", { class: "label" }, "Share"), () => openShareDialog(api, serverId, terminalId, refocus, el), {
    class: "tool-button",
    "data-icon": "share",
    "aria-haspopup": "dialog",
  });
  return el;
}

/**
 * Opens the share dialog of one terminal; it removes itself when closed. It lives in the page of
 * `anchor` (its button), so leaving that page takes the dialog with it.
 */
export function openShareDialog(api: Api, serverId: string, terminalId: number, refocus: () => void, anchor?: Element): HTMLDialogElement {
  const expiry = h("select", { name: "ttl_s", id: "share-expiry" }, ...SHARE_EXPIRIES.map(([s, text]) => h("option", { value: s }, text)));
  const create = h("button", { type: "submit", class: "primary" }, "Create link");
  const error = h("p", { class: "error", role: "alert" });
  const created = h("div", { class: "added-secret share-created", hidden: true });
  const list = h("ul", { class: "share-list", "aria-label": "Live share links" });
  const titleId = "share-title";
  const form = h(
    "form",
    { class: "share-form", method: "dialog" },
    h("label", { for: "share-expiry" }, "Expires after"),
    expiry,
    create,
  );
  const dialog = h(
    "dialog",
    { class: "share-dialog", "aria-labelledby": titleId },
    h("h2", { id: titleId }, `Share terminal #${terminalId}`),
    h("p", { class: "muted" }, "A share link gives read-only access to this terminal to anyone who holds it: they can watch, not type, until it expires or you revoke it."),
    form,
    error,
    created,
    h("h3", {}, "Live links"),
    list,
    h("div", { class: "dialog-actions" }, button("Close the share dialog", "Close", () => dialog.close(), { class: "text-button" })),
  );

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    create.disabled = true;
    error.textContent = "";
    try {
      const link = await api.createShareLink(serverId, terminalId, Number(expiry.value));
      showCreated(link.url, link.expires_at);
      await reload();
    } catch (err) {
      error.textContent = `Could not create a link: ${(err as Error).message}`;
    } finally {
      create.disabled = false;
    }
  });

  function showCreated(url: string, expiresAt: number): void {
    const field = h("input", { type: "text", class: "secret-value", readonly: true, value: url, "aria-label": "Share link" });
    const copy = async (): Promise<void> => {
      try {
        await navigator.clipboard.writeText(url);
        notify("Link copied.");
      } catch {
        field.select();
        notify("Could not copy: the link is selected, copy it yourself.", "error");
      }
    };
    replaceChildren(
      created,
      h("p", {}, h("strong", {}, "Copy this link now: "), `it is shown only once. It works until ${new Date(expiresAt).toLocaleString()}.`),
      field,
      h("div", {}, button("Copy the share link", "Copy", () => void copy(), { class: "text-button" })),
    );
    created.hidden = false;
    field.focus();
    field.select();
  }

  async function revoke(link: ShareLinkInfo): Promise<void> {
    error.textContent = "";
    try {
      await api.revokeShareLink(serverId, terminalId, link.id);
      notify("Share link revoked: whoever opened it can no longer watch.");
    } catch (err) {
      error.textContent = `Could not revoke the link: ${(err as Error).message}`;
    }
    await reload();
    expiry.focus();
  }

  async function reload(): Promise<void> {
    let links: ShareLinkInfo[];
    try {
      links = await api.shareLinks(serverId, terminalId);
    } catch (err) {
      replaceChildren(list, h("li", { class: "muted" }, `Could not load the links: ${(err as Error).message}`));
      return;
    }
    if (links.length === 0) {
      replaceChildren(list, h("li", { class: "muted" }, "No live links."));
      return;
    }
    replaceChildren(
      list,
      ...links.map((link) =>
        h(
          "li",
          { class: "share-item", "data-share-id": link.id },
          h(
            "span",
            { class: "share-facts" },
            h("time", { datetime: new Date(link.expires_at).toISOString(), title: new Date(link.expires_at).toLocaleString() }, `expires ${expiresIn(link.expires_at)}`),
            h("span", { class: "muted clip", title: `made by ${link.created_by}` }, ` · by ${link.created_by}`),
          ),
          button(`Revoke the link that expires ${expiresIn(link.expires_at)}`, "Revoke", () => void revoke(link), { class: "text-button danger" }),
        ),
      ),
    );
  }

  dialog.addEventListener("close", () => {
    dialog.remove();
    refocus();
  });
  // A click on the backdrop (outside the dialog's box) closes it.
  dialog.addEventListener("click", (ev) => {
    if (ev.target === dialog) dialog.close();
  });
  (anchor?.closest(".terminal-page") ?? document.body).append(dialog);
  dialog.showModal();
  expiry.focus();
  replaceChildren(list, h("li", { class: "muted" }, "Loading…"));
  void reload();
  return dialog;
}
