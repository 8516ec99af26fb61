// The app's hash routes, which carry only where the user is (never a credential):
//   #/                     sessions
//   #/t/{server}/{id}      terminal
//   #/t/{server}/{id}/ro   terminal, read-only
//   #/admin/{section}      admin pages (admin-page.ts)

/** A parsed route. */
export type Route = { page: "sessions" } | { page: "terminal"; serverId: string; terminalId: number; readonly: boolean } | { page: "admin"; section: string };

/** Parses the hash; anything unknown is the sessions page. */
export function parseRoute(hash: string): Route {
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
        return { page: "sessions" };
      }
      return { page: "terminal", serverId, terminalId, readonly: m[3] !== undefined };
    }
  }
  return { page: "sessions" };
}

/** The hash of a terminal page. */
export function terminalHref(serverId: string, terminalId: number, readonly = false): string {
  return `#/t/${encodeURIComponent(serverId)}/${terminalId}${readonly ? "/ro" : ""}`;
}

/** The hash of an admin section. */
export function adminHref(section: string): string {
  return `#/admin/${section}`;
}
