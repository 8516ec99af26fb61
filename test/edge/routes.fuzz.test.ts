/**
 * Route fuzzing inside workerd with the real Worker (its fetch handler, with the real Durable
 * Objects and D1; see `handle` for why not through SELF): generated requests (methods, paths on both
 * mounts, credentials, origins, content types, bodies that are malformed JSON, huge or binary)
 * to every route. Properties: no request crashes (no 500) or hangs, and every error is in its
 * API family's shape. The run count is the EDGETTY_FUZZ_RUNS binding (vitest.config.ts passes
 * the environment variable through): a few thousand in `npm test`, 100,000 under `npm run fuzz`.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { beforeAll, expect, it } from "vitest";
import { api, BASE, handle, KEY, registerServer, worker } from "./worker-client.ts";

/** Runs when EDGETTY_FUZZ_RUNS is not set. */
const DEFAULT_RUNS = 2000;
/** Longest one request may take before it counts as a hang, in milliseconds. */
const REQUEST_DEADLINE_MS = 10_000;
/** A body past every route's limit (the largest is /execute's 2 MiB). */
const HUGE_BODY_BYTES = (2 << 20) + 1024;

/** Cases sent through the Worker's entry point (`exports`), whose cost per request grows with use. */
const ENTRY_POINT_CASES = 100;

const RUNS = Number((env as unknown as { EDGETTY_FUZZ_RUNS?: string }).EDGETTY_FUZZ_RUNS) || DEFAULT_RUNS;
const SERVER = "fz";

/** The route templates of every family; `{id}` is replaced by a generated segment. */
const SERVER_SCOPED = [
  "/api/v1/terminal/sessions",
  "/api/v1/terminal/create",
  "/api/v1/terminal/{id}",
  "/api/v1/terminal/ws",
  "/api/v1/terminal/history",
  "/api/v1/terminal/history/{id}",
  "/api/v1/terminal/raw",
  "/api/v1/terminal/screenshot",
  "/api/v1/terminal/{id}/{id}",
  "/health",
  "/api/config",
  "/openapi.json",
  "/execute",
  "/execute/{id}",
  "/execute/{id}/status",
  "/execute/{id}/input",
  "/execute/{id}/{id}/{id}",
  "/api/terminals",
  "/api/terminals/{id}",
  "/files/{id}",
  "/api/{id}",
  "/{id}",
];
const TOP_ONLY = [
  "/api/v1/auth/session",
  "/api/v1/auth/{id}",
  "/api/v1/admin/servers",
  "/api/v1/admin/servers/{server}",
  "/api/v1/admin/{id}",
  "/api/v1/terminals",
  "/api/v1/terminals/",
  "/agent/v1/control",
  "/agent/v1/data",
  "/agent/{id}",
  "/",
  "/index.html",
];

const segment = fc.oneof(
  fc.constantFrom("1", "7", "0", "65535", "65536", "40000", "-1", "1e3", "01", "nope", "..", "%2e%2e", "%00", "%ZZ", "a%2Fb", "fz", "local", "BAD_ID"),
  fc.integer({ min: -2, max: 70_000 }).map(String),
  fc.string({ maxLength: 12 }).map((s) => encodeURIComponent(s)),
);
const mount = fc.constantFrom("", "", `/api/v1/terminals/${SERVER}`, "/api/v1/terminals/nosuch", "/api/v1/terminals/BAD_ID", "/api/v1/terminals/%E0%A4%A");
const query = fc.oneof(
  fc.constant(""),
  fc.constantFrom("?terminal_id=1", "?terminal_id=70000", "?readonly=1&terminal_id=1", "?stream=true", "?wait=abc", "?server=fz", "?format=html&tail=-1", "?history_limit=99999999999", "?fontsize=x&foreground=(1,2,3)"),
  fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 16 }), { maxKeys: 3 }).map((d) => "?" + new URLSearchParams(d).toString()),
);
const path = fc
  .tuple(fc.oneof(fc.tuple(mount, fc.constantFrom(...SERVER_SCOPED)), fc.tuple(fc.constant(""), fc.constantFrom(...TOP_ONLY))), fc.array(segment, { minLength: 3, maxLength: 3 }), query)
  .map(([[m, template], ids, q]) => {
    let i = 0;
    // Server ids from a small set, so the registry (and each listing's fan-out) stays small.
    const server = ["fz", "alpha", "BAD_ID", ids[0]!.replace(/[^a-z]/g, "") || "x"][ids[1]!.length % 4]!;
    return m + template.replace(/\{id\}/g, () => ids[i++ % ids.length]!).replace("{server}", server) + q;
  });

const jsonValue = fc.jsonValue({ maxDepth: 3 });
const body = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  { weight: 4, arbitrary: fc.record({ terminal_id: fc.oneof(fc.integer(), fc.string(), jsonValue), command: fc.oneof(fc.string(), jsonValue), shell: fc.string(), token: fc.string(), env: jsonValue, input: fc.string() }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
  { weight: 2, arbitrary: jsonValue.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 200 }) }, // mostly malformed JSON
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }) },
  { weight: 1, arbitrary: fc.constant("x".repeat(HUGE_BODY_BYTES)) },
);
const headers = fc.record(
  {
    Authorization: fc.constantFrom(`Bearer ${KEY}`, "Bearer wrong", "Basic abc", "Bearer", `bearer ${KEY}  `, ""),
    "Content-Type": fc.constantFrom("application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/vnd.api+json", "garbage"),
    Origin: fc.constantFrom(BASE, "http://evil.example", "null"),
    Cookie: fc.constantFrom("edgetty_session=admin.99999999999999.AAAA.BBBB", "edgetty_session=", "a=b; edgetty_session=%%%"),
    Upgrade: fc.constant("websocket"),
    "Sec-Fetch-Site": fc.constantFrom("same-origin", "cross-site", "none"),
    "X-User-Id": fc.string({ maxLength: 40 }),
  },
  { requiredKeys: [] },
);
const method = fc.constantFrom("GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS");

type Shape = "session" | "open-terminal" | "terminals" | "agent" | "any-json" | "assets";

/** Which shapes an error may have, from the path as a client sees it. */
function expectedShapes(pathname: string): Shape[] {
  const scoped = /^\/api\/v1\/terminals\/[^/]+(\/.*)?$/.exec(pathname);
  // A server with no path after it (`/api/v1/terminals/{id}`): the terminals family refuses the
  // server itself; a known server's mount root is the Open Terminal API's 404.
  if (scoped && scoped[1] === undefined) return ["terminals", "open-terminal"];
  const rest = scoped ? scoped[1]! : pathname;
  // Under a server's prefix, an unknown or invalid server is the terminals family's error.
  const outer: Shape[] = scoped ? ["terminals"] : [];
  if (!scoped && /^\/api\/v1\/terminals\/?$/.test(pathname)) return ["terminals"];
  if (!scoped && rest.startsWith("/agent/")) return ["agent"];
  if (!scoped && (rest.startsWith("/api/v1/auth/") || rest.startsWith("/api/v1/admin/"))) return ["session"];
  // `/api/v1/` is the session API's namespace (Open Terminal has none there).
  if (rest.startsWith("/api/v1/")) return [...outer, "session"];
  // The reference's terminal routes answer `{error}` for sessions, FastAPI's `{detail}` otherwise.
  if (rest === "/api/terminals" || rest.startsWith("/api/terminals/")) return [...outer, "open-terminal", "terminals"];
  if (scoped || rest.startsWith("/api/") || rest.startsWith("/execute") || rest.startsWith("/files/") || rest === "/openapi.json" || rest === "/health" || rest === "/api/config") {
    return [...outer, "open-terminal"];
  }
  return ["open-terminal", "assets"];
}

function hasShape(body: unknown, shape: Shape, status: number): boolean {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return false;
  const b = body as Record<string, unknown>;
  switch (shape) {
    case "session":
      return b["statusCode"] === status && typeof b["error"] === "string" && typeof b["message"] === "string" && typeof b["code"] === "string";
    case "open-terminal":
    case "agent":
      return "detail" in b;
    case "terminals":
      return typeof b["error"] === "string";
    default:
      return false;
  }
}

async function withDeadline<T>(what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${REQUEST_DEADLINE_MS} ms: ${what}`)), REQUEST_DEADLINE_MS);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

let cases = 0;

beforeAll(async () => {
  await registerServer(SERVER);
});

it(`answers ${RUNS} generated requests without crashing or hanging, every error in its family's shape`, { timeout: 0 }, async () => {
  await fc.assert(
    fc.asyncProperty(method, path, headers, body, async (m, p, h, b) => {
      const init: RequestInit = { method: m, headers: Object.fromEntries(Object.entries(h).filter(([, v]) => v !== "")) };
      if (b !== undefined && m !== "GET" && m !== "HEAD") init.body = b;
      const what = `${m} ${p} ${JSON.stringify(h)} body ${b === undefined ? "none" : typeof b === "string" ? `${b.length} chars` : `${b.byteLength} bytes`}`;
      // The first cases enter through the Worker's entry point as a client's would; the rest
      // call its fetch handler in this isolate (see `handle`).
      const res = await withDeadline(what, cases++ < ENTRY_POINT_CASES ? worker.fetch(BASE + p, init) : handle(BASE + p, init));
      if (res.webSocket) {
        res.webSocket.accept();
        res.webSocket.close(1000, "fuzz");
        return;
      }
      const text = await withDeadline(what, res.text());
      expect(res.status, `${what} → ${res.status} ${text.slice(0, 200)}`).not.toBe(500);
      expect(res.status, what).toBeLessThan(600);
      if (res.status < 400 || m === "HEAD") return; // a HEAD answer has no body to check
      const shapes = expectedShapes(new URL(BASE + p).pathname);
      const isJson = (res.headers.get("Content-Type") ?? "").startsWith("application/json");
      if (!isJson) {
        // The web app's own 404s, and the seed's plain-text 404 for raw output of an unknown session.
        const allowed = shapes.includes("assets") || (/\/api\/v1\/terminal\/raw$/.test(new URL(BASE + p).pathname) && res.status === 404);
        expect(allowed, `${what} → ${res.status} non-JSON ${text.slice(0, 200)}`).toBe(true);
        return;
      }
      const parsed: unknown = JSON.parse(text);
      const ok = shapes.some((shape) => hasShape(parsed, shape, res.status));
      expect(ok, `${what} → ${res.status} ${text.slice(0, 300)}; expected one of ${shapes.join(", ")}`).toBe(true);
    }),
    { numRuns: RUNS },
  );
  // Still answering, its Durable Objects included.
  expect((await worker.fetch(`${BASE}/health`)).status).toBe(200);
  expect((await api("/api/v1/terminals/")).status).toBe(200);
});
