// The app's hash routes, which carry only where the user is (never a credential):
//   #/                     sessions
//   #/t/{server}/{id}      terminal
//   #/t/{server}/{id}/ro   terminal, read-only
//   #/admin/{section}      admin pages (admin-page.ts)
// and the one page that is not behind sign-in, a share link (edge/share-links.ts):
//   /share#server={server}&terminal={id}&token={ets_…}   one terminal, read-only, by its link's token
// (the token rides in the fragment, which the browser never sends to a server).

/** A parsed route; a sessions route's `unknown` is the hash that named no page (a mistyped or out-of-range address). */
export type Route =
  | { page: "sessions"; unknown?: string }
  | { page: "terminal"; serverId: string; terminalId: number; readonly: boolean }
  | { page: "admin"; section: string };

/** Parses the hash; anything unknown is the sessions page, which then says so (`unknown`). */
export function parseRoute(hash: string): Route {
  const route = parseKnownRoute(hash);
  return route === null ? (/^#?\/?$/.test(hash) ? { page: "sessions" } : { page: "sessions", unknown: hash }) : route;
}

function parseKnownRoute(hash: string): Route | null {
  const admin = /^#\/admin(?:\/([a-z]{1,20}))?$/.exec(hash);
  if (admin) return { page: "admin", section: admin[1] ?? "" };
  const m = /^#\/t\/([^/]+)\/(\d{1,5})(\/ro)?$/.exec(hash);
  if (m) {
    const terminalId = Number(m[2]);
    if (terminalId >= 1 && terminalId <= 65535) {
      let serverId: string;
      try {
        serverId = decodeURIComponent(m[1]!);
      } catch {
        return null;
      }
      return { page: "terminal", serverId, terminalId, readonly: m[3] !== undefined };
    }
  }
  return null;
}

/** The hash of a terminal page. */
export function terminalHref(serverId: string, terminalId: number, readonly = false): string {
  return `#/t/${encodeURIComponent(serverId)}/${terminalId}${readonly ? "/ro" : ""}`;
}

/** The hash of an admin section. */
export function adminHref(section: string): string {
  return `#/admin/${section}`;
}

/** A share link's page: the terminal it opens and the token that opens it. */
export interface ShareLink {
  serverId: string;
  terminalId: number;
  token: string;
}

/** The share link this page was opened by, or null when it is not the share page (or a broken link). */
export function parseShareLink(pathname: string, hash: string): ShareLink | null {
  if (pathname !== "/share") return null;
  const q = new URLSearchParams(hash.replace(/^#/, ""));
  const serverId = q.get("server") ?? "";
  const terminalId = Number(q.get("terminal"));
  const token = q.get("token") ?? "";
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(serverId) || !Number.isInteger(terminalId) || terminalId < 1 || terminalId > 65535) return null;
  if (!/^ets_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/.test(token)) return null;
  return { serverId, terminalId, token };
}
