import { DurableObject } from "cloudflare:workers";
export class HostDO extends DurableObject { async fetch() { return new Response("host"); } }
export class TerminalDO extends DurableObject { async fetch() { return new Response("term"); } }
export default { async fetch(req: Request, env: any) { const id = env.HOST.idFromName("x"); return env.HOST.get(id).fetch(req); } };
