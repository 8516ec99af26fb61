/**
 * The session API's screen-state routes (seed 002): command history, raw output and screenshots.
 * History is read from the TerminalDO's own storage, so it answers while the agent is offline;
 * raw output and screenshots come from the agent (the `screen` control op, relayed by the HostDO).
 * Query parameters are validated here, so bad ones get a 400 before anything reaches an agent.
 */
import type { IRequest } from "itty-router";
import { parseColor, type RGBA } from "../shared/colors.ts";
import { ApiError } from "../shared/errors.ts";
import {
  FONT_SIZE_DEFAULT_PX,
  FONT_SIZE_MAX_PX,
  FONT_SIZE_MIN_PX,
  RAW_FORMATS,
  SCREENSHOT_FORMATS,
  TAIL_LINES_MAX,
  type RawFormat,
  type ScreenRequest,
  type ScreenResult,
  type ScreenshotFormat,
} from "../shared/screen.ts";
import { parseBool, parseTerminalId, requireTerminalId } from "../shared/validation.ts";
import { hostStub, terminalStub } from "./addresses.ts";
import type { Env } from "./env.ts";
import { unwrap } from "./errors.ts";
import { mayReach, type ApiFamily, type RouteRequest } from "./family.ts";
import { first, intParam } from "./http.ts";

/** True when a screenshot request asks to be saved on the host (`save`, default true; a malformed value counts as yes). */
function screenshotSaves(request: Request): boolean {
  const save = new URL(request.url).searchParams.get("save");
  return save !== "false" && save !== "0";
}

/** The raw endpoint's terminal when none is named (the seed's default). */
export const RAW_DEFAULT_TERMINAL_ID = 1;

function query(request: IRequest, name: string): string | undefined {
  return first(request.query[name]);
}

/** Asks the agent behind `serverId`; its errors come back as ApiErrors. */
async function askAgent(env: Env, serverId: string, params: ScreenRequest): Promise<ScreenResult> {
  return unwrap(await hostStub(env, serverId).screen(params));
}

function decodeBody(result: ScreenResult): Uint8Array | string {
  if (result.encoding !== "base64") return result.body;
  const binary = atob(result.body);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function colorParam(request: IRequest, name: string, fallback: string): RGBA {
  const value = query(request, name) ?? fallback;
  const color = parseColor(value);
  if (!color) {
    throw new ApiError(400, "INVALID_PARAMETERS", `${name} must be black, red, green, yellow, blue, magenta, cyan, white, (R,G,B), (R,G,B,A) with channels 0-255, or #RRGGBB[AA]`);
  }
  return color;
}

function fontSizeParam(request: IRequest): number {
  const value = query(request, "fontsize");
  if (value === undefined || value === "") return FONT_SIZE_DEFAULT_PX;
  const n = /^\d{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= FONT_SIZE_MIN_PX && n <= FONT_SIZE_MAX_PX)) {
    throw new ApiError(400, "INVALID_PARAMETERS", `fontsize must be an integer ${FONT_SIZE_MIN_PX}-${FONT_SIZE_MAX_PX}`);
  }
  return n;
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], fallback: T, name: string): T {
  if (value === undefined || value === "") return fallback;
  if (!(allowed as readonly string[]).includes(value)) throw new ApiError(400, "INVALID_PARAMETERS", `${name} must be one of ${allowed.join(", ")}`);
  return value as T;
}

function accessDenied(): ApiError {
  return new ApiError(403, "ACCESS_DENIED", "Access denied: you may not reach this terminal");
}

/** Declares the screen-state routes on the terminal session API's family. */
export function mountScreenApi(api: ApiFamily): void {
  const history = async (request: RouteRequest, env: Env): Promise<Response> => {
    const { serverId } = request.scope;
    const given = request.params["terminal_id"] ?? query(request, "terminal_id");
    if (given === undefined || given === "") throw new ApiError(400, "MISSING_TERMINAL_ID", "Missing terminal_id: give it in the path or the query");
    const terminalId = requireTerminalId(given);
    if (!mayReach(request, terminalId)) throw accessDenied();
    const stub = terminalStub(env, serverId, terminalId);
    return Response.json(unwrap(await stub.commandRecords()), { headers: { "Cache-Control": "no-store" } });
  };
  api.route("GET", "/api/v1/terminal/history/:terminal_id", "read", history);
  api.route("GET", "/api/v1/terminal/history", "read", history);

  api.route("GET", "/api/v1/terminal/raw", "read", async (request, env) => {
    const { serverId } = request.scope;
    const idParam = query(request, "terminal_id");
    const terminalId = idParam === undefined || idParam === "" ? RAW_DEFAULT_TERMINAL_ID : parseTerminalId(idParam);
    if (terminalId === null) throw new ApiError(400, "INVALID_TERMINAL_ID", "Terminal ID must be numeric 1-65535");
    if (!mayReach(request, terminalId)) throw accessDenied();
    const format = oneOf<RawFormat>(query(request, "format"), RAW_FORMATS, "download", "format");
    const tailParam = query(request, "tail");
    const tail = tailParam === undefined || tailParam === "" ? undefined : intParam(tailParam, "tail", 0, 0, TAIL_LINES_MAX);
    let result: ScreenResult;
    try {
      result = await askAgent(env, serverId, {
        terminal_id: terminalId,
        kind: format === "download" ? "raw" : format,
        ...(tail !== undefined ? { tail } : {}),
      });
    } catch (error) {
      // The seed answers an unknown session here in plain text.
      if (error instanceof ApiError && error.code === "SESSION_NOT_FOUND") {
        return new Response("Terminal session not found", { status: 404, headers: { "Content-Type": "text/plain; charset=utf-8" } });
      }
      throw error;
    }
    // What the terminal printed, served on this origin: never run as a page of it (the html
    // format is escaped already; this is the second line), never sniffed as another type.
    const headers = new Headers({ "Content-Type": result.content_type, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" });
    if (format === "html") headers.set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox");
    if (format === "download") headers.set("Content-Disposition", `attachment; filename="terminal-${terminalId}.raw"`);
    if (result.truncated) headers.set("X-Edgetty-Truncated", "1");
    return new Response(decodeBody(result), { headers });
  });

  // `save` (default true) writes the image to the host's disk: only for callers with `write`
  // access; a read-only caller's screenshot is never saved. Saving is a side effect, so a
  // cookie-authenticated save must come from the edge's own origin (family.ts `sideEffects`).
  api.route("GET", "/api/v1/terminal/screenshot", "read", async (request, env) => {
    const { serverId } = request.scope;
    const terminalId = requireTerminalId(query(request, "terminal_id"));
    if (!mayReach(request, terminalId)) throw accessDenied();
    const format = oneOf<ScreenshotFormat>(query(request, "format"), SCREENSHOT_FORMATS, "png", "format");
    const params: ScreenRequest = {
      terminal_id: terminalId,
      kind: "screenshot",
      format,
      foreground: colorParam(request, "foreground", "white"),
      background: colorParam(request, "background", "black"),
      fontsize: fontSizeParam(request),
      save: parseBool(query(request, "save"), "save", true) && request.access === "write",
    };
    const result = await askAgent(env, serverId, params);
    const headers = new Headers({
      "Content-Type": result.content_type,
      "Cache-Control": "no-store",
      "Content-Disposition": `inline; filename="terminal-${terminalId}.${format === "jpeg" ? "jpg" : format}"`,
    });
    if (result.path) headers.set("X-Screenshot-Path", result.path);
    if (result.width && result.height) headers.set("X-Screenshot-Size", `${result.width}x${result.height}`);
    return new Response(decodeBody(result), { headers });
  }, { sideEffects: screenshotSaves });
}
