/**
 * The web app's family: its static files (from the Worker's assets) with the app's security
 * headers, the share page, and the Open Terminal-shaped 404 for what nothing else answers.
 */
import { OpenTerminalError } from "./errors.ts";
import { ApiFamily } from "./family.ts";
import { SHARE_PAGE_PATH } from "./share-links.ts";

/**
 * What the web app's pages and files may do, as a Content-Security-Policy: scripts, styles and
 * connections from this origin only (xterm.js sets inline styles; screenshots are shown from
 * `blob:` URLs), no plugins, no `<base>`, and never inside another site's frame (clickjacking).
 * The app builds its DOM with `textContent`; this is the second line should that ever slip.
 */
export const WEB_APP_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; " +
  "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/** A static file's answer with the app's security headers. */
export function withAppHeaders(file: Response): Response {
  const out = new Response(file.body, file);
  out.headers.set("Content-Security-Policy", WEB_APP_CSP);
  out.headers.set("X-Content-Type-Options", "nosniff");
  out.headers.set("X-Frame-Options", "DENY");
  return out;
}

/**
 * The web app: every GET no API family took is a static file. Anything else is a 404 in the
 * Open Terminal family's shape (the top level is the default server's Open Terminal API).
 */
export function webApp(): ApiFamily {
  const app = new ApiFamily("web app", OpenTerminalError);
  // A share link's page (share-links.ts): the app itself, which reads the link from the fragment.
  app.route("GET", SHARE_PAGE_PATH, "public", async (request, env) => {
    if (env.ASSETS) return withAppHeaders(await env.ASSETS.fetch(new Request(new URL("/", request.url), { headers: request.headers })));
    throw new OpenTerminalError(404, "NOT_FOUND", `No route for GET ${SHARE_PAGE_PATH}`);
  });
  // What neither a route nor a file answers is the reference's 404 `{"detail":"Not Found"}`.
  app.route("GET", "*", "public", async (request, env) => {
    if (env.ASSETS) {
      const file = await env.ASSETS.fetch(request);
      if (file.status !== 404) return withAppHeaders(file);
    }
    throw new OpenTerminalError(404, "NOT_FOUND", "Not Found");
  });
  app.route("ALL", "*", "admin", () => {
    throw new OpenTerminalError(404, "NOT_FOUND", "Not Found");
  });
  return app;
}
