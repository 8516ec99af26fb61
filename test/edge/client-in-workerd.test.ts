/**
 * The typed client running inside workerd (as in a Worker of one's own): its fetch-based
 * WebSocket upgrade, admin calls and error mapping, against this Worker with real DOs and D1.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { EdgettyClient, EdgettyError } from "../../client/index.ts";

const KEY = "test-admin-key";
const BASE = "http://edge.test";
const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default;
const client = (token = KEY) => new EdgettyClient({ url: BASE, token, fetch: ((input: string | URL | Request, init?: RequestInit) => worker.fetch(String(input instanceof Request ? input.url : input), init)) as typeof fetch });

async function refusal(call: Promise<unknown>): Promise<EdgettyError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof EdgettyError) return error;
    throw error;
  }
  throw new Error("the call succeeded; expected an EdgettyError");
}

describe("the client inside workerd", () => {
  it("makes admin calls and maps refusals", async () => {
    const et = client();
    const id = `wk-${Math.random().toString(36).slice(2, 8)}`;
    expect(await et.admin.users.create({ id })).toMatchObject({ id, role: "user" });
    expect(await refusal(et.admin.users.create({ id }))).toMatchObject({ status: 409, family: "session" });
    expect(await refusal(client("wrong").admin.users.list())).toMatchObject({ status: 401, code: "UNAUTHORIZED", family: "session" });
    expect(await refusal(et.server("no-such").exec.list())).toMatchObject({ status: 404, code: "SERVER_NOT_FOUND", family: "terminals" });
  });

  it("upgrades through fetch: a refusal reads its status and body, a close its code", async () => {
    const et = client();
    // No agent is connected here: the session WebSocket is refused before the upgrade, in its family's shape.
    expect(await refusal(et.sessions.connect({ terminal_id: 5 }))).toMatchObject({ status: 503, code: "AGENT_OFFLINE", family: "session" });
    // The raw terminal WebSocket is accepted, authenticated by its first message, then closed 4004: no such session.
    expect(await refusal(et.terminals.connect("nothing-here"))).toMatchObject({ status: 404, closeCode: 4004, family: "websocket" });
  });
});
