/**
 * Share links on the terminal session API (seed 002's `/api/v1/terminal/…` family, both mounts):
 *
 *   POST   /api/v1/terminal/share/{terminal_id}        {"ttl_s"?}  → 201 {id, token, url, expires_at, …}
 *   GET    /api/v1/terminal/share/{terminal_id}                    → the terminal's live links (no tokens)
 *   DELETE /api/v1/terminal/share/{terminal_id}/{id}               → revoke; its open WebSockets close
 *
 * Each needs `write` access to the terminal (the admin, or a user with a `write` grant on the
 * server or on that terminal): whoever may type in a terminal may let others watch it. Each is
 * audited (`share.create`, `share.revoke`). The link itself (share-links.ts) opens the terminal
 * read-only with no other credential.
 */
import { ApiError } from "../shared/errors.ts";
import { requireTerminalId } from "../shared/validation.ts";
import { hostStub, terminalStub } from "./addresses.ts";
import { clientIp, recordAudit } from "./audit.ts";
import { actorOf } from "./caller.ts";
import { mayReach, type ApiFamily, type RouteRequest } from "./family.ts";
import { readJsonObject } from "./http.ts";
import { createShareLink, listShareLinks, revokeShareLink, shareTtl, shareUrl } from "./share-links.ts";

const SHARE_ID_RE = /^[0-9a-f]{16}$/;

/** The terminal a share route addresses, which the caller must be able to reach. */
function shareTerminal(request: RouteRequest): number {
  const terminalId = requireTerminalId(request.params["terminal_id"]);
  if (!mayReach(request, terminalId)) throw new ApiError(403, "ACCESS_DENIED", "Access denied: you may not reach this terminal");
  return terminalId;
}

/** Declares the share-link routes on the terminal session API's family. */
export function mountShareLinks(api: ApiFamily): void {
  api.route(
    "POST",
    "/api/v1/terminal/share/:terminal_id",
    "write",
    async (request, env) => {
      const { serverId } = request.scope;
      const terminalId = shareTerminal(request);
      const body = await readJsonObject(request);
      const ttlS = shareTtl(body["ttl_s"]);
      if (!(await hostStub(env, serverId).hasSession(terminalId))) throw new ApiError(404, "SESSION_NOT_FOUND", "Terminal session not found");
      const actor = actorOf(request.principal!.identity);
      const link = await createShareLink(env.DB, { serverId, terminalId, createdBy: actor, ttlS });
      await recordAudit(env.DB, { actor, action: "share.create", server_id: serverId, terminal_id: terminalId, detail: `share:${link.id} ttl ${ttlS} s`, ip: clientIp(request) });
      const url = shareUrl(new URL(request.url).origin, link, link.token);
      return Response.json({ ...link, url }, { status: 201, headers: { "Cache-Control": "no-store" } });
    },
    { json: true },
  );

  api.route("GET", "/api/v1/terminal/share/:terminal_id", "write", async (request, env) => {
    const terminalId = shareTerminal(request);
    return Response.json(await listShareLinks(env.DB, request.scope.serverId, terminalId), { headers: { "Cache-Control": "no-store" } });
  });

  api.route("DELETE", "/api/v1/terminal/share/:terminal_id/:share_id", "write", async (request, env) => {
    const { serverId } = request.scope;
    const terminalId = shareTerminal(request);
    const shareId = request.params["share_id"] ?? "";
    if (!SHARE_ID_RE.test(shareId)) throw new ApiError(400, "INVALID_PARAMETERS", "share id must be 16 hex digits");
    if (!(await revokeShareLink(env.DB, serverId, terminalId, shareId))) throw new ApiError(404, "SHARE_NOT_FOUND", "No such share link on this terminal");
    const actor = actorOf(request.principal!.identity);
    await recordAudit(env.DB, { actor, action: "share.revoke", server_id: serverId, terminal_id: terminalId, detail: `share:${shareId}`, ip: clientIp(request) });
    // The row is gone, so the link fails from the next request; its open sockets close now.
    const closed = await terminalStub(env, serverId, terminalId).closeCredential(`share:${shareId}`, "share link revoked");
    return Response.json({ status: "revoked", id: shareId, closed_sockets: closed });
  });
}
