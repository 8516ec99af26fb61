/**
 * The Open Terminal API family (seed 004 = open-terminal v0.1.4, plus the later API Open WebUI
 * uses with terminal servers), one module per concern, re-exported here:
 * - open-terminal-errors.ts     FastAPI error shapes, `HttpReply`, `OtCode`
 * - open-terminal-fields.ts     pydantic-style field checks
 * - open-terminal-execute.ts    `/execute*` shapes and validation (and the seed-vs-today mode rule)
 * - open-terminal-files.ts      `/files/*` validation
 * - open-terminal-ndjson.ts     seed 004's NDJSON stream and Python formatting
 * - open-terminal-terminals.ts  `/api/terminals` and its WebSocket
 * - open-terminal-routes.ts     the route list, `/health`, `/api/config`
 * - open-terminal-openapi.ts    the `/openapi.json` document
 *
 * Imports neither runtime: the edge validates with it, the agent re-checks relayed calls with it.
 */
export * from "./open-terminal-errors.ts";
export * from "./open-terminal-execute.ts";
export * from "./open-terminal-ndjson.ts";
export * from "./open-terminal-terminals.ts";
export * from "./open-terminal-routes.ts";
export * from "./open-terminal-files.ts";
export { utf8Length, queryView, parseJsonBody } from "./open-terminal-fields.ts";
export { openApiDocument, type OpenApiOptions } from "./open-terminal-openapi.ts";
