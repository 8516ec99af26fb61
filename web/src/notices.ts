// Short messages for the user (a copy that failed, input that could not be sent), shown briefly in
// one polite live region so screen readers announce them too.
import { h } from "./dom.ts";

/** How long a notice stays on screen, in milliseconds. */
export const NOTICE_VISIBLE_MS = 4_000;
/** Most notices shown at once; older ones are removed first. */
export const NOTICES_MAX = 3;

let region: HTMLElement | null = null;

function ensureRegion(): HTMLElement {
  if (!region || !region.isConnected) {
    region = h("div", { class: "notices", role: "status", "aria-live": "polite" });
    document.body.append(region);
  }
  return region;
}

/** Shows `message`; `kind` "error" styles it as a problem. */
export function notify(message: string, kind: "info" | "error" = "info"): void {
  const root = ensureRegion();
  const note = h("div", { class: `notice notice-${kind}` }, message);
  root.append(note);
  while (root.childElementCount > NOTICES_MAX) root.firstElementChild?.remove();
  setTimeout(() => note.remove(), NOTICE_VISIBLE_MS);
}
