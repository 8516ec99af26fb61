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

  it("lists only routes the API serves, as model tools, and no UI-only route", () => {
    const served = new Set(OPEN_TERMINAL_ROUTES.filter((r) => !r.websocket).map((r) => `${r.method} ${r.path}`));
    const listed = operations(doc).map(({ path, method }) => `${method.toUpperCase()} ${path}`);
    for (const route of listed) expect(served, route).toContain(route);
    expect(listed).not.toContain("GET /files/view");
    expect(listed).not.toContain("POST /api/terminals");
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

  it("exposes exactly the reference's twelve tools to Open WebUI, with unique operationIds", () => {
    const ids = operations(doc).flatMap(({ op }) => (op.operationId ? [op.operationId as string] : []));
    expect(ids.sort()).toEqual([
      "display_file", "get_process_status", "glob_search", "grep_search", "kill_process", "list_files", "list_processes",
      "read_file", "replace_file_content", "run_command", "send_process_input", "write_file",
    ]);
    expect(doc.paths["/execute"].post.description).toContain("Linux, bash");
    const withInfo = openApiDocument({ info: true }) as Json;
    expect(withInfo.paths["/info"].get.operationId).toBe("get_info");
  });

  it("offers the reference's parameters, and not seed 004's stream and timeout", () => {
    const params = (path: string, method: string) => ((doc.paths[path][method].parameters ?? []) as Json[]).map((p) => p.name);
    expect(params("/execute", "post")).toEqual(["wait", "tail"]);
    expect(Object.keys(doc.components.schemas.ExecRequest.properties)).toEqual(["command", "cwd", "env"]);
    expect(params("/execute/{process_id}/status", "get")).toEqual(["process_id", "wait", "offset", "tail"]);
    expect(params("/files/read", "get")).toEqual(["path", "start_line", "end_line"]);
    expect(params("/files/grep", "get")).toEqual(["query", "path", "regex", "case_insensitive", "include", "match_per_line", "max_results"]);
    expect(params("/files/glob", "get")).toEqual(["pattern", "path", "exclude", "type", "max_results"]);
    expect(params("/files/list", "get")).toEqual(["directory"]);
    expect(params("/execute/{process_id}", "delete")).toEqual(["process_id", "force"]);
  });

  it("resolves every $ref to a component schema", () => {
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(10);
    for (const r of all) {
      expect(r).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas[r.split("/").pop()!], r).toBeDefined();
    }
  });

});
