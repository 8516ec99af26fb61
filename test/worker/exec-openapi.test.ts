/** The OpenAPI document: OpenAPI 3.1 in shape, and it lists exactly the routes edgetty serves. */
import { describe, expect, it } from "vitest";
import { OPEN_TERMINAL_ROUTES, openApiDocument } from "../../shared/open-terminal.ts";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
const doc = JSON.parse(JSON.stringify(openApiDocument({ serverUrl: "https://edge.example/api/v1/terminals/web1", systemInfo: "Linux, bash" }))) as Json;

function operations(d: Json): { path: string; method: string; op: Json }[] {
  return Object.entries(d.paths as Json).flatMap(([path, item]) =>
    Object.entries(item as Json)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ path, method, op: op as Json })),
  );
}

function refs(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) value.forEach((v) => refs(v, out));
  else if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (k === "$ref" && typeof v === "string") out.push(v);
      else refs(v, out);
    }
  }
  return out;
}

describe("the OpenAPI document", () => {
  it("has the OpenAPI 3.1 top-level shape", () => {
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info).toMatchObject({ title: "Open Terminal", version: expect.any(String) });
    expect(doc.servers).toEqual([{ url: "https://edge.example/api/v1/terminals/web1" }]);
    expect(Object.keys(doc.paths).every((p) => p.startsWith("/"))).toBe(true);
    expect(doc.components.securitySchemes).toEqual({ HTTPBearer: { type: "http", scheme: "bearer" } });
  });

  it("lists only routes the API serves, and every HTTP route it serves", () => {
    const served = new Set(OPEN_TERMINAL_ROUTES.filter((r) => !r.websocket).map((r) => `${r.method} ${r.path}`));
    const listed = new Set(operations(doc).map(({ path, method }) => `${method.toUpperCase()} ${path}`));
    for (const route of listed) expect(served, route).toContain(route);
    for (const route of served) if (route !== "GET /openapi.json") expect(listed, route).toContain(route);
  });

  it("gives every operation responses, declared path parameters and the right security", () => {
    const authFree = new Set(OPEN_TERMINAL_ROUTES.filter((r) => !r.auth && !r.websocket).map((r) => `${r.method} ${r.path}`));
    for (const { path, method, op } of operations(doc)) {
      const where = `${method} ${path}`;
      expect(Object.keys(op.responses ?? {}).length, where).toBeGreaterThan(0);
      for (const [code, response] of Object.entries(op.responses as Json)) {
        expect(code, where).toMatch(/^[1-5]\d\d$/);
        expect((response as Json).description, where).toEqual(expect.any(String));
      }
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const declared = ((op.parameters ?? []) as Json[]).filter((p) => p.in === "path").map((p) => p.name);
      expect(declared, where).toEqual(templated);
      for (const p of (op.parameters ?? []) as Json[]) {
        expect(["query", "path", "header", "cookie"], where).toContain(p.in);
        if (p.in === "path") expect(p.required, where).toBe(true);
      }
      const open = authFree.has(`${method.toUpperCase()} ${path}`);
      expect(op.security, where).toEqual(open ? [] : [{ HTTPBearer: [] }]);
    }
  });

  it("exposes exactly the reference's execute tools to Open WebUI, with unique operationIds", () => {
    const ids = operations(doc).flatMap(({ op }) => (op.operationId ? [op.operationId as string] : []));
    expect(ids.sort()).toEqual(["get_process_status", "kill_process", "list_processes", "run_command", "send_process_input"]);
    expect(doc.paths["/execute"].post.description).toContain("Linux, bash");
  });

  it("resolves every $ref to a component schema", () => {
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(10);
    for (const r of all) {
      expect(r).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas[r.split("/").pop()!], r).toBeDefined();
    }
  });

  it("describes the execute request as the reference's model", () => {
    const exec = doc.components.schemas.ExecRequest;
    expect(exec.required).toEqual(["command"]);
    expect(Object.keys(exec.properties)).toEqual(["command", "cwd", "env", "timeout"]);
    const params = (doc.paths["/execute"].post.parameters as Json[]).map((p) => [p.name, p.in]);
    expect(params).toEqual([["stream", "query"], ["wait", "query"], ["tail", "query"]]);
    expect(doc.paths["/execute"].post.responses["200"].content).toHaveProperty("application/x-ndjson");
  });

  it("merges extra paths served beside this family", () => {
    const withFiles = openApiDocument({ extraPaths: { "/files/list": { get: { operationId: "list_files", responses: {} } } } }) as Json;
    expect(withFiles.paths["/files/list"].get.operationId).toBe("list_files");
    expect(withFiles.servers).toBeUndefined();
  });
});
