/**
 * Conformance with the reference Open Terminal server: every route of the reference's documented
 * API (shared/reference/open-terminal-api.md, notebooks excepted) replayed against the real local
 * stack on both mounts (`/` and `/api/v1/terminals/local/`), checking status codes, body shapes
 * and error texts. Each case states the reference's answer; an added `code` key is allowed.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { AddressInfo } from "node:net";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import yazl from "yazl";
import { startStack, type TestStack } from "../support/stack.ts";
import { Waiters } from "../support/waiters.ts";

let stack: TestStack;
let home: string;
/** The agent's info text (the reference's OPEN_TERMINAL_INFO): `/info` answers and `get_info` is offered. */
const INFO_TEXT = "GPU: none. Ask the operator before installing system packages.";

/**
 * The reference's OpenAPI operations, which Open WebUI turns into the model's tools: operation id
 * → method, path, parameters (in order) and request-body fields. From the reference page
 * (shared/reference/open-terminal-api.md, "OpenAPI"); `get_info` is there when OPEN_TERMINAL_INFO is set.
 */
const REFERENCE_OPERATIONS: Record<string, { route: string; params: string[]; body?: string[] }> = {
  list_files: { route: "get /files/list", params: ["directory"] },
  read_file: { route: "get /files/read", params: ["path", "start_line", "end_line"] },
  display_file: { route: "get /files/display", params: ["path"] },
  write_file: { route: "post /files/write", params: [], body: ["path", "content"] },
  replace_file_content: { route: "post /files/replace", params: [], body: ["path", "replacements"] },
  grep_search: { route: "get /files/grep", params: ["query", "path", "regex", "case_insensitive", "include", "match_per_line", "max_results"] },
  glob_search: { route: "get /files/glob", params: ["pattern", "path", "exclude", "type", "max_results"] },
  list_processes: { route: "get /execute", params: [] },
  run_command: { route: "post /execute", params: ["wait", "tail"], body: ["command", "cwd", "env"] },
  get_process_status: { route: "get /execute/{process_id}/status", params: ["process_id", "wait", "offset", "tail"] },
  send_process_input: { route: "post /execute/{process_id}/input", params: ["process_id"], body: ["input"] },
  kill_process: { route: "delete /execute/{process_id}", params: ["process_id", "force"] },
  get_info: { route: "get /info", params: [] },
};

beforeAll(async () => {
  stack = await startStack({ agentEnv: { EDGETTY_OT_INFO: INFO_TEXT } });
  home = stack.home;
});

afterAll(async () => {
  await stack?.stop();
});

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A one-page PDF whose text is `text` (Helvetica, one text object), with the usual binary comment line. */
function tinyPdf(text: string): Buffer {
  const stream = `BT /F1 24 Tf 20 100 Td (${text}) Tj ET`;
  const objs = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let out = "%PDF-1.4\n%\u00e2\u00e3\u00cf\u00d3\n";
  const offsets: number[] = [];
  objs.forEach((o, i) => {
    offsets.push(out.length);
    out += `${i + 1} 0 obj\n${o}\nendobj\n`;
  });
  const xref = out.length;
  out += `xref\n0 ${objs.length + 1}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("")}`;
  // latin1: the comment's four bytes stay single bytes (not UTF-8), as in real PDFs.
  return Buffer.from(out + `trailer\n<< /Size ${objs.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`, "latin1");
}

/** A minimal Word document with the given paragraphs. */
async function tinyDocx(paragraphs: string[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  zip.addBuffer(Buffer.from('<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'), "[Content_Types].xml");
  zip.addBuffer(Buffer.from('<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'), "_rels/.rels");
  const body = paragraphs.map((p) => `<w:p><w:r><w:t>${p}</w:t></w:r></w:p>`).join("");
  zip.addBuffer(Buffer.from(`<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${body}</w:body></w:document>`), "word/document.xml");
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const MOUNTS = [
  ["top level", ""],
  ["per-server mount", "/api/v1/terminals/local"],
] as const;

describe.each(MOUNTS)("on the %s", (_name, base) => {
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)["Content-Type"] = "application/json";
    }
    const res = await stack.api(base + path, init);
    const type = res.headers.get("Content-Type") ?? "";
    return { status: res.status, type, headers: res.headers, body: (type.includes("json") ? await res.json() : await res.text()) as Json };
  };
  let dir: string;
  let rel: string;

  beforeAll(() => {
    rel = `conf${base ? "-srv" : ""}`;
    dir = join(home, rel);
    mkdirSync(join(dir, "sub"), { recursive: true });
    writeFileSync(join(dir, "a.txt"), "alpha\nbeta\ngamma\n");
    writeFileSync(join(dir, "sub", "b.py"), "print('beta')\n");
    writeFileSync(join(dir, "img.png"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]));
    writeFileSync(join(dir, "blob.bin"), Buffer.from([0xff, 0xfe, 0x00, 0x81]));
  });

  describe("discovery", () => {
    it("GET /health and /api/config answer without a key", async () => {
      expect((await fetch(`${stack.url}${base}/health`)).status).toBe(200);
      const config = await (await fetch(`${stack.url}${base}/api/config`)).json();
      expect(config).toEqual({ features: { terminal: true, notebooks: false, system: true } });
    });

    it("GET /system answers {prompt} ending with the info text; /info answers {info}", async () => {
      expect(await call("GET", "/system")).toMatchObject({ status: 200, body: { prompt: expect.stringContaining("run_command") } });
      expect((await call("GET", "/system")).body.prompt.endsWith(`\n\n${INFO_TEXT}`)).toBe(true);
      expect(await call("GET", "/info")).toEqual({ status: 200, type: "application/json", headers: expect.anything(), body: { info: INFO_TEXT } });
    });

    it("GET /openapi.json offers exactly the reference's operations, with its ids and parameters", async () => {
      const doc = (await (await fetch(`${stack.url}${base}/openapi.json`)).json()) as Json;
      const offered: Record<string, { route: string; params: string[]; body?: string[] }> = {};
      for (const [path, item] of Object.entries(doc.paths as Json)) {
        for (const [method, op] of Object.entries(item as Json)) {
          if (!op.operationId) continue;
          const schemaRef = op.requestBody?.content?.["application/json"]?.schema?.$ref as string | undefined;
          const body = schemaRef ? Object.keys(doc.components.schemas[schemaRef.split("/").pop()!].properties) : undefined;
          offered[op.operationId] = { route: `${method} ${path}`, params: ((op.parameters ?? []) as Json[]).map((p) => p.name), ...(body ? { body } : {}) };
        }
      }
      expect(offered).toEqual(REFERENCE_OPERATIONS);
    });

    it("GET /docs is an API explorer page served without a key, from this origin", async () => {
      const res = await fetch(`${stack.url}${base}/docs`);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain(`data-openapi="${base}/openapi.json"`);
      const script = await fetch(`${stack.url}/docs-assets/swagger-ui-bundle.js`);
      expect(script.status).toBe(200);
      expect((await script.text()).length).toBeGreaterThan(100_000);
    });

    it("refuses a missing or wrong key with 401 {detail: Invalid API key}", async () => {
      for (const auth of [undefined, "Bearer wrong", "Basic abc"]) {
        const res = await fetch(`${stack.url}${base}/files/list`, auth ? { headers: { Authorization: auth } } : {});
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ detail: "Invalid API key" });
      }
    });

    it("answers unknown paths 404 {detail: Not Found} and a known path's other method 405", async () => {
      // The same body wherever the answer is made (the edge or the agent), with the family's code.
      expect(await call("GET", "/files/nope")).toMatchObject({ status: 404, body: { detail: "Not Found", code: "NOT_FOUND" } });
      expect(await call("GET", "/nope")).toMatchObject({ status: 404, body: { detail: "Not Found", code: "NOT_FOUND" } });
      expect(await call("PUT", "/files/list")).toMatchObject({ status: 405, body: { detail: "Method Not Allowed", code: "METHOD_NOT_ALLOWED" } });
      // The public discovery routes' other methods are 405 without a key: FastAPI routes first.
      for (const [method, path] of [["POST", "/health"], ["DELETE", "/openapi.json"], ["PUT", "/api/config"], ["POST", "/docs"]]) {
        const res = await fetch(`${stack.url}${base}${path!}`, { method: method! });
        expect(res.status, `${method} ${path}`).toBe(405);
        expect(await res.json()).toEqual({ detail: "Method Not Allowed", code: "METHOD_NOT_ALLOWED" });
      }
      // Every path of the family counts as known, parameters included.
      for (const [method, path] of [["PUT", "/api/terminals"], ["PATCH", "/api/terminals/abc123"], ["PUT", "/files/serve/a/b.txt"], ["DELETE", "/ports"]]) {
        expect(await call(method!, path!)).toMatchObject({ status: 405, body: { detail: "Method Not Allowed" } });
      }
      expect(await call("GET", "/files/serve")).toMatchObject({ status: 404, body: { detail: "Not Found" } });
      if (base === "") {
        // Past the API and the web app's files: the same JSON 404 (not an empty one).
        const res = await fetch(`${stack.url}/no/such/page`);
        expect(res.status).toBe(404);
        expect(await res.json()).toMatchObject({ detail: "Not Found" });
        expect(await call("POST", "/no/such/route")).toMatchObject({ status: 404, body: { detail: "Not Found" } });
      }
    });
  });

  describe("files: the model tools", () => {
    it("list_files: {dir, entries:[{name, type, size, modified}]} sorted by name; 404 for a file or nothing", async () => {
      const r = await call("GET", `/files/list?directory=${rel}`);
      expect(r.status).toBe(200);
      expect(r.body.dir).toBe(dir);
      expect(r.body.entries.map((e: Json) => [e.name, e.type])).toEqual([["a.txt", "file"], ["blob.bin", "file"], ["img.png", "file"], ["sub", "directory"]]);
      expect(r.body.entries[0]).toEqual({ name: "a.txt", type: "file", size: 17, modified: expect.any(Number) });
      expect(await call("GET", `/files/list?directory=${rel}/a.txt`)).toMatchObject({ status: 404, body: { detail: "Directory not found" } });
      expect(await call("GET", "/files/list?directory=/")).toMatchObject({ status: 200, body: { dir: "/" } });
    });

    it("read_file: {path, total_lines, content} with line ranges; images raw; other binaries 415; 404; 422", async () => {
      expect((await call("GET", `/files/read?path=${rel}/a.txt`)).body).toEqual({ path: join(dir, "a.txt"), total_lines: 3, content: "alpha\nbeta\ngamma\n" });
      expect((await call("GET", `/files/read?path=${rel}/a.txt&start_line=2&end_line=2`)).body).toMatchObject({ total_lines: 3, content: "beta\n" });
      const img = await stack.api(`${base}/files/read?path=${rel}/img.png`);
      expect(img.headers.get("Content-Type")).toBe("image/png");
      expect(new Uint8Array(await img.arrayBuffer())[1]).toBe(0x50);
      expect(await call("GET", `/files/read?path=${rel}/blob.bin`)).toMatchObject({ status: 415, body: { detail: "Unsupported binary file type: application/octet-stream (4 bytes)" } });
      expect(await call("GET", `/files/read?path=${rel}/none`)).toMatchObject({ status: 404, body: { detail: "File not found" } });
      const bad = await call("GET", `/files/read?path=${rel}/a.txt&start_line=0`);
      expect(bad.status).toBe(422);
      expect(bad.body.detail[0]).toMatchObject({ type: "greater_than_equal", loc: ["query", "start_line"] });
      expect((await call("GET", "/files/read")).body.detail[0]).toMatchObject({ type: "missing", loc: ["query", "path"], msg: "Field required" });
    });

    it("read_file extracts the text of PDF and Word documents", async () => {
      writeFileSync(join(dir, "doc.pdf"), tinyPdf("Hello PDF"));
      writeFileSync(join(dir, "doc.docx"), await tinyDocx(["First paragraph", "Second paragraph"]));
      expect((await call("GET", `/files/read?path=${rel}/doc.pdf`)).body).toEqual({ path: join(dir, "doc.pdf"), total_lines: 1, content: "Hello PDF" });
      const docx = await call("GET", `/files/read?path=${rel}/doc.docx&start_line=2`);
      expect(docx.body).toEqual({ path: join(dir, "doc.docx"), total_lines: 2, content: "Second paragraph" });
    });

    it("display_file: {path, exists}, never 404", async () => {
      expect((await call("GET", `/files/display?path=${rel}/a.txt`)).body).toEqual({ path: join(dir, "a.txt"), exists: true });
      expect(await call("GET", `/files/display?path=${rel}/none`)).toMatchObject({ status: 200, body: { exists: false } });
    });

    it("write_file: parents created, {path, size} in UTF-8 bytes; 400 with the OS error for a directory", async () => {
      expect((await call("POST", "/files/write", { path: `${rel}/new/deep/c.txt`, content: "h\u00e9\n" })).body).toEqual({ path: join(dir, "new/deep/c.txt"), size: 4 });
      expect(await call("POST", "/files/write", { path: rel, content: "x" })).toMatchObject({ status: 400, body: { detail: `[Errno 21] Is a directory: '${dir}'` } });
      expect((await call("POST", "/files/write", { path: "x" })).status).toBe(422);
    });

    it("replace_file_content: in order; 400 when not found or ambiguous; 404", async () => {
      await call("POST", "/files/write", { path: `${rel}/r.txt`, content: "a b a\nc\n" });
      expect(await call("POST", "/files/replace", { path: `${rel}/r.txt`, replacements: [{ target: "a", replacement: "x" }] })).toMatchObject({
        status: 400,
        body: { detail: "Found 2 occurrences of target string but allow_multiple is false" },
      });
      expect(await call("POST", "/files/replace", { path: `${rel}/r.txt`, replacements: [{ target: "zz", replacement: "x" }] })).toMatchObject({ status: 400, body: { detail: "Target string not found: 'zz'" } });
      const ok = await call("POST", "/files/replace", { path: `${rel}/r.txt`, replacements: [{ target: "a", replacement: "x", allow_multiple: true }, { target: "c", replacement: "d", start_line: 2 }] });
      expect(ok.body).toEqual({ path: join(dir, "r.txt"), size: 8 });
      expect((await call("GET", `/files/read?path=${rel}/r.txt`)).body.content).toBe("x b x\nd\n");
      expect(await call("POST", "/files/replace", { path: `${rel}/none`, replacements: [] })).toMatchObject({ status: 404, body: { detail: "File not found" } });
    });

    it("grep_search: matches per line or per file, include globs, 400 for a bad regex, 404", async () => {
      const r = await call("GET", `/files/grep?query=beta&path=${rel}`);
      expect(r.body).toEqual({
        query: "beta",
        path: dir,
        matches: [
          { file: join(dir, "a.txt"), line: 2, content: "beta" },
          { file: join(dir, "sub", "b.py"), line: 1, content: "print('beta')" },
        ],
        truncated: false,
      });
      expect((await call("GET", `/files/grep?query=beta&path=${rel}&include=*.py&match_per_line=false`)).body.matches).toEqual([{ file: join(dir, "sub", "b.py") }]);
      expect((await call("GET", `/files/grep?query=BETA&path=${rel}&case_insensitive=true&max_results=1`)).body).toMatchObject({ truncated: true, matches: [{ line: 2 }] });
      expect((await call("GET", `/files/grep?query=(&path=${rel}`)).body.detail).toMatch(/^Invalid regex: /);
      // Python's syntax, as the reference compiles the query: inline flags, named groups.
      expect((await call("GET", `/files/grep?query=${encodeURIComponent("(?i)(?P<w>BETA)")}&path=${rel}&max_results=1`)).body).toMatchObject({ matches: [{ line: 2 }] });
      expect((await call("GET", `/files/grep?query=(&regex=false&path=${rel}`)).status).toBe(200);
      expect(await call("GET", `/files/grep?query=x&path=${rel}/none`)).toMatchObject({ status: 404, body: { detail: "Search path not found" } });
    });

    it("glob_search: relative paths with type, size and modified; exclude and type filters; 404; 422", async () => {
      const r = await call("GET", `/files/glob?pattern=*.py&path=${rel}`);
      expect(r.body).toEqual({ pattern: "*.py", path: dir, matches: [{ path: "sub/b.py", type: "file", size: 14, modified: expect.any(Number) }], truncated: false });
      expect((await call("GET", `/files/glob?pattern=*&path=${rel}&type=directory`)).body.matches.map((m: Json) => m.path)).toEqual(expect.arrayContaining(["sub"]));
      expect((await call("GET", `/files/glob?pattern=*.txt&path=${rel}&exclude=a.*`)).body.matches.map((m: Json) => m.path)).not.toContain("a.txt");
      expect(await call("GET", `/files/glob?pattern=*&path=${rel}/none`)).toMatchObject({ status: 404, body: { detail: "Search directory not found" } });
      // An empty pattern (or exclude) matches nothing, as fnmatch: no error.
      expect(await call("GET", `/files/glob?pattern=&path=${rel}`)).toMatchObject({ status: 200, body: { matches: [], truncated: false } });
      expect((await call("GET", `/files/glob?pattern=*.txt&path=${rel}&exclude=`)).body.matches.map((m: Json) => m.path)).toContain("a.txt");
      // `type` is a pattern in the reference's schema: pydantic's pattern error, word for word.
      expect((await call("GET", `/files/glob?pattern=*&type=link`)).body.detail).toEqual([
        { type: "string_pattern_mismatch", loc: ["query", "type"], msg: "String should match pattern '^(file|directory|any)$'", input: "link", ctx: { pattern: "^(file|directory|any)$" } },
      ]);
    });
  });

  describe("files: the UI routes", () => {
    it("cwd: per X-Session-Id, {cwd, home}; POST 404 for a missing directory", async () => {
      const session = { "X-Session-Id": `chat-${base ? "srv" : "top"}` };
      expect((await call("GET", "/files/cwd", undefined, session)).body).toEqual({ cwd: home, home, root: { path: home, label: "Home" } });
      expect((await call("POST", "/files/cwd", { path: rel }, session)).body).toEqual({ cwd: dir });
      expect((await call("GET", "/files/cwd", undefined, session)).body).toEqual({ cwd: dir, home, root: { path: home, label: "Home" } });
      // The model tools resolve relative paths against it; other sessions do not see it.
      expect((await call("GET", "/files/read?path=a.txt", undefined, session)).body).toMatchObject({ content: "alpha\nbeta\ngamma\n" });
      expect((await call("GET", "/files/cwd", undefined, { "X-Session-Id": "other" })).body.cwd).toBe(home);
      expect((await call("GET", "/files/cwd", undefined, { ...session, "X-User-Id": "someone-else" })).body.cwd).toBe(home);
      // And commands started in that session run there.
      const run = await call("POST", "/execute?wait=5", { command: "pwd" }, session);
      expect(run.body.output.map((o: Json) => o.data).join("")).toBe(`${dir}\r\n`);
      expect(await call("POST", "/files/cwd", { path: `${rel}/none` }, session)).toMatchObject({ status: 404, body: { detail: "Directory not found" } });
    });

    it("view and serve: raw bytes with the guessed type, sandboxed; 404", async () => {
      const view = await stack.api(`${base}/files/view?path=${rel}/a.txt`);
      expect(view.headers.get("Content-Type")).toMatch(/^text\/plain/);
      expect(view.headers.get("Content-Security-Policy")).toMatch(/^sandbox/);
      expect(await view.text()).toBe("alpha\nbeta\ngamma\n");
      const serve = await stack.api(`${base}/files/serve${dir}/sub/b.py`);
      expect(await serve.text()).toBe("print('beta')\n");
      expect(await call("GET", `/files/view?path=${rel}/none`)).toMatchObject({ status: 404, body: { detail: "File not found" } });
      // The file's size as Content-Length, as the reference's FileResponse (to a client that takes
      // no compression: the platform's front gzips text for one that does, as Cloudflare's does).
      const plain = await stack.api(`${base}/files/view?path=${rel}/a.txt`, { headers: { "Accept-Encoding": "identity" } });
      expect(plain.headers.get("Content-Length")).toBe("17");
      await plain.arrayBuffer();
    });

    it("HEAD on every GET route answers as GET does, without a body", async () => {
      const paths = [
        "/system",
        "/info",
        "/ports",
        "/files/cwd",
        `/files/list?directory=${rel}`,
        `/files/read?path=${rel}/a.txt`,
        `/files/read?path=${rel}/img.png`,
        `/files/display?path=${rel}/a.txt`,
        `/files/view?path=${rel}/a.txt`,
        `/files/view?path=${rel}/none`,
        `/files/serve${dir}/sub/b.py`,
        `/files/grep?query=beta&path=${rel}`,
        `/files/glob?pattern=*.txt&path=${rel}`,
      ];
      for (const path of paths) {
        const [get, head] = [await stack.api(base + path), await stack.api(base + path, { method: "HEAD" })];
        await get.arrayBuffer();
        expect({ path, status: head.status, type: head.headers.get("Content-Type") }).toEqual({ path, status: get.status, type: get.headers.get("Content-Type") });
        expect(await head.text()).toBe("");
        // A file's size is said to HEAD as to GET.
        if (path.startsWith("/files/view?") || path.startsWith("/files/serve")) {
          const plain = await stack.api(base + path, { headers: { "Accept-Encoding": "identity" } });
          await plain.arrayBuffer();
          expect({ path, length: head.headers.get("Content-Length") }).toEqual({ path, length: plain.headers.get("Content-Length") });
        }
      }
    });

    it("mkdir, move and delete, with the reference's errors", async () => {
      expect((await call("POST", "/files/mkdir", { path: `${rel}/m/n` })).body).toEqual({ path: join(dir, "m/n") });
      expect((await call("POST", "/files/move", { source: `${rel}/m/n`, destination: `${rel}/m/o` })).body).toEqual({ source: join(dir, "m/n"), destination: join(dir, "m/o") });
      expect(await call("POST", "/files/move", { source: `${rel}/m/none`, destination: `${rel}/m/p` })).toMatchObject({ status: 404, body: { detail: "Source path not found" } });
      expect(await call("POST", "/files/move", { source: `${rel}/m/o`, destination: `${rel}/nope/p` })).toMatchObject({ status: 400, body: { detail: "Destination parent directory not found" } });
      expect(await call("POST", "/files/move", { source: `${rel}/m/o`, destination: `${rel}/a.txt` })).toMatchObject({ status: 409, body: { detail: "Destination already exists" } });
      expect((await call("DELETE", `/files/delete?path=${rel}/m`)).body).toEqual({ path: join(dir, "m"), type: "directory" });
      expect(await call("DELETE", `/files/delete?path=${rel}/m`)).toMatchObject({ status: 404, body: { detail: "Path not found" } });
      // Not the home, nor what holds it (an empty path resolves to the home; the reference deletes it).
      for (const path of ["", "~", ".", "/", dirname(home)]) {
        expect(await call("DELETE", `/files/delete?path=${encodeURIComponent(path)}`), path).toMatchObject({ status: 400, body: { detail: "Refusing to delete the home directory or a folder that holds it" } });
      }
      expect(existsSync(home)).toBe(true);
    });

    it("upload: multipart `file`, only its basename kept, directory created; 422 without a file", async () => {
      const form = new FormData();
      form.append("file", new Blob(["uploaded"]), "../../evil/up.txt");
      const res = await stack.api(`${base}/files/upload?directory=${rel}/up`, { method: "POST", body: form });
      expect(await res.json()).toEqual({ path: join(dir, "up", "up.txt"), size: 8 });
      const empty = new FormData();
      empty.append("other", "x");
      const none = await stack.api(`${base}/files/upload?directory=${rel}/up`, { method: "POST", body: empty });
      expect(none.status).toBe(422);
      expect((await none.json()).detail[0]).toMatchObject({ type: "missing", loc: ["body", "file"] });
    });

    it("upload: a body that ends inside the file part is 400, leaves no part file, and the agent carries on", async () => {
      const body = '--xyz\r\nContent-Disposition: form-data; name="file"; filename="cut.txt"\r\n\r\nunterminated';
      const res = await stack.api(`${base}/files/upload?directory=${rel}/cut`, { method: "POST", headers: { "Content-Type": "multipart/form-data; boundary=xyz" }, body });
      expect(res.status).toBe(400);
      expect((await res.json()).detail).toMatch(/^Malformed multipart body: /);
      expect(readdirSync(join(dir, "cut"))).toEqual([]);
      // The same agent answers the next call (it used to exit on the part stream's unheard error).
      expect((await call("GET", `/files/list?directory=${rel}/cut`)).status).toBe(200);
    });

    it("archive: a zip download named after the path; 400 without paths; 404 names the path", async () => {
      const res = await stack.api(`${base}/files/archive`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ paths: [`${rel}/sub`] }) });
      expect(res.headers.get("Content-Type")).toBe("application/zip");
      expect(res.headers.get("Content-Disposition")).toMatch(/^attachment; filename="sub\.zip"/);
      const zip = Buffer.from(await res.arrayBuffer());
      expect(zip.subarray(0, 4)).toEqual(Buffer.from([0x50, 0x4b, 0x03, 0x04]));
      expect(zip.includes(Buffer.from("sub/b.py"))).toBe(true);
      expect(await call("POST", "/files/archive", { paths: [] })).toMatchObject({ status: 400, body: { detail: "No paths provided" } });
      expect(await call("POST", "/files/archive", { paths: ["nope/x"] })).toMatchObject({ status: 404, body: { detail: "Path not found: nope/x" } });
    });
  });

  describe("ports and proxy", () => {
    it("/ports lists a listener started through the API; /proxy forwards to it; 502 when nothing listens; 422 for a bad port", async () => {
      const started = await call("POST", "/execute", { command: `cd ${dir} && exec python3 -m http.server 0 --bind 127.0.0.1` });
      const id = started.body.id as string;
      let port = 0;
      for (let i = 0; i < 200 && port === 0; i++) {
        const ports = (await call("GET", "/ports")).body.ports as { port: number; pid: number; process: string }[];
        port = ports.find((p) => p.process.startsWith("python"))?.port ?? 0;
        if (port === 0) await call("GET", `/execute/${id}/status?wait=0.05`);
      }
      expect(port).toBeGreaterThan(0);
      const proxied = await stack.api(`${base}/proxy/${port}/a.txt?x=1`);
      expect(proxied.status).toBe(200);
      expect(await proxied.text()).toBe("alpha\nbeta\ngamma\n");
      expect(proxied.headers.get("Content-Security-Policy")).toMatch(/^sandbox/);
      await call("DELETE", `/execute/${id}?force=true`);
      expect(await call("GET", `/proxy/${port}/`)).toMatchObject({ status: 502, body: { detail: `Connection refused: localhost:${port}` } });
      expect(await call("GET", "/proxy/0/")).toMatchObject({ status: 422, body: { detail: "Port must be between 1 and 65535" } });
      expect(await call("GET", "/proxy/-1/")).toMatchObject({ status: 422, body: { detail: "Port must be between 1 and 65535" } });
      expect((await call("GET", "/proxy/abc/")).status).toBe(422);
      // fetch cannot carry TRACE (nor CONNECT, TRACK) at either end of the tunnel: a clear 405.
      const traced = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${stack.url}${base}/proxy/${port}/`, { method: "TRACE", headers: { Authorization: `Bearer ${stack.apiKey}` } }, (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
      expect(traced.status).toBe(405);
      expect(JSON.parse(traced.body)).toMatchObject({ detail: "Method Not Allowed" });
    });
  });

  describe("WebSockets through /proxy (beyond the reference)", () => {
    it("relays text and binary both ways with the subprotocol, and closes together", async () => {
      const server = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: (p) => (p.has("hmr") ? "hmr" : false) });
      server.on("connection", (ws, req) => {
        ws.send(`hello ${req.url}`);
        ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
      });
      await new Promise<void>((resolve) => server.once("listening", () => resolve()));
      const port = (server.address() as AddressInfo).port;
      try {
        const url = `${stack.url.replace(/^http/, "ws")}${base}/proxy/${port}/live?x=1`;
        const client = new WebSocket(url, ["hmr"], { headers: { Authorization: `Bearer ${stack.apiKey}` } });
        const received: (string | Buffer)[] = [];
        // Messages are queued from the start: the upstream's greeting can arrive in the same read
        // as the 101 (no permessage-deflate to delay it), before a listener added after "open".
        const inbox: (string | Buffer)[] = [];
        const waiters = new Waiters();
        client.on("message", (d: Buffer, bin: boolean) => {
          inbox.push(bin ? d : d.toString());
          waiters.notify();
        });
        const next = async () => {
          await waiters.until(() => inbox.length > 0, "a message through the proxy");
          return inbox.shift()!;
        };
        await new Promise((resolve, reject) => {
          client.once("open", resolve);
          client.once("error", reject);
        });
        expect(client.protocol).toBe("hmr");
        received.push(await next());
        client.send("ping");
        received.push(await next());
        client.send(Buffer.from([1, 2, 3]));
        received.push(await next());
        expect(received).toEqual(["hello /live?x=1", "ping", Buffer.from([1, 2, 3])]);
        const closed = new Promise<number>((resolve) => client.once("close", (code) => resolve(code)));
        for (const ws of server.clients) ws.close(4000, "bye");
        expect(await closed).toBe(4000);
        const refused = new WebSocket(`${stack.url.replace(/^http/, "ws")}${base}/proxy/1/`, { headers: { Authorization: `Bearer ${stack.apiKey}` } });
        const status = await new Promise<number>((resolve) => refused.once("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0)));
        expect(status).toBe(502);
      } finally {
        server.close();
      }
    });
  });

  describe("execute", () => {
    it("run_command without wait answers at once; get_process_status; send_process_input; kill_process then 404", async () => {
      const started = await call("POST", "/execute", { command: "read x; echo got $x" });
      expect(started.body).toEqual({ id: expect.stringMatching(/^\d{8}-\d{6}-[0-9a-f]{6}$/), command: "read x; echo got $x", status: "running", exit_code: null, output: [], truncated: false, next_offset: 0, log_path: expect.any(String) });
      expect((await call("POST", `/execute/${started.body.id}/input`, { input: "hi\\n" })).body).toEqual({ status: "ok" });
      const done = await call("GET", `/execute/${started.body.id}/status?wait=10`);
      expect(done.body).toMatchObject({ status: "done", exit_code: 0 });
      expect(done.body.output.map((o: Json) => o.data).join("")).toContain("got hi\r\n");
      expect(await call("POST", `/execute/${started.body.id}/input`, { input: "x" })).toMatchObject({ status: 400, body: { detail: "Process has already exited" } });
      expect((await call("DELETE", `/execute/${started.body.id}`)).body).toEqual({ status: "killed" });
      expect(await call("GET", `/execute/${started.body.id}/status`)).toMatchObject({ status: 404, body: { detail: "Process not found" } });
      expect(await call("DELETE", `/execute/${started.body.id}`)).toMatchObject({ status: 404, body: { detail: "Process not found" } });
      // An id longer than any process's is simply not found (not a malformed call).
      const long = "a".repeat(300);
      expect(await call("GET", `/execute/${long}/status`)).toMatchObject({ status: 404, body: { detail: "Process not found" } });
      expect(await call("DELETE", `/execute/${long}`)).toMatchObject({ status: 404, body: { detail: "Process not found" } });
    });

    it("422 for a bad wait or tail; ?wait=null means no wait", async () => {
      expect((await call("POST", "/execute?wait=301", { command: "true" })).body.detail[0]).toMatchObject({ type: "less_than_equal", loc: ["query", "wait"] });
      expect((await call("POST", "/execute?tail=0", { command: "true" })).status).toBe(422);
      expect((await call("POST", "/execute?wait=null", { command: "sleep 1" })).body.status).toBe("running");
    });

    it("422 for a value nested thousands deep, echoing only its first levels; 414 for a URL past the tunnel's limits", async () => {
      const deep = `{"command":${"[".repeat(20_000)}${"]".repeat(20_000)}}`;
      const refused = await call("POST", "/execute", deep);
      expect(refused).toMatchObject({ status: 422, body: { detail: [{ type: "string_type", loc: ["body", "command"] }] } });
      expect(JSON.stringify(refused.body).length).toBeLessThan(1000);
      expect((await call("POST", "/files/write", `{"path":"x","content":${"[".repeat(20_000)}${"]".repeat(20_000)}}`)).status).toBe(422);
      // A body that is not UTF-8 is FastAPI's 400, not patched with U+FFFD.
      const notUtf8 = Buffer.concat([Buffer.from('{"command":"echo '), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]);
      for (const path of ["/execute", "/files/write"]) {
        const res = await stack.api(base + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: notUtf8 });
        expect({ path, status: res.status, body: await res.json() }).toMatchObject({ path, status: 400, body: { detail: "There was an error parsing the body" } });
      }
      expect(await call("GET", `/files/list?directory=.&junk=${"a".repeat(17_000)}`)).toMatchObject({ status: 414, body: { code: "URI_TOO_LONG" } });
      // Under a server's mount the terminals proxy's own path rule answers first (400 INVALID_PATH).
      if (base === "") expect(await call("GET", `/proxy/1/${"a".repeat(9_000)}`)).toMatchObject({ status: 414, body: { code: "URI_TOO_LONG" } });
    });
  });

  describe("terminals", () => {
    it("POST /api/terminals uses X-Session-Id as the id when one is sent; GET and DELETE find it; 404 {error}", async () => {
      const sid = `s${Date.now().toString(36)}${base ? "b" : "a"}`;
      const created = await call("POST", "/api/terminals", undefined, { "X-Session-Id": sid });
      expect(created.body).toEqual({ id: sid, created_at: expect.stringMatching(/Z$/), pid: expect.any(Number) });
      expect((await call("GET", `/api/terminals/${sid}`)).body).toMatchObject({ id: sid });
      expect((await call("GET", "/api/terminals")).body.map((t: Json) => t.id)).toContain(sid);
      expect((await call("DELETE", `/api/terminals/${sid}`)).body).toEqual({ status: "deleted" });
      expect(await call("GET", `/api/terminals/${sid}`)).toMatchObject({ status: 404, body: { error: "Session not found" } });
    });
  });
});

describe("CORS", () => {
  for (const base of ["", "/api/v1/terminals/local"]) {
    it(`answers preflights without a key and names the origin on answers (${base || "/"})`, async () => {
      const pre = await fetch(`${stack.url}${base}/files/list`, {
        method: "OPTIONS",
        headers: { Origin: "http://page.example", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,x-session-id" },
      });
      expect(pre.status).toBe(200);
      expect(await pre.text()).toBe("OK");
      expect(pre.headers.get("Access-Control-Allow-Origin")).toBe("http://page.example");
      expect(pre.headers.get("Access-Control-Allow-Headers")).toBe("authorization,x-session-id");
      expect(pre.headers.get("Access-Control-Allow-Credentials")).toBeNull();
      const res = await stack.api(`${base}/files/cwd`, { headers: { Origin: "http://page.example" } });
      expect(res.headers.get("Access-Control-Allow-Origin")).toBe("http://page.example");
    });
  }

  it("never lets the session cookie act for another origin", async () => {
    const login = await fetch(`${stack.url}/api/v1/auth/session`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: stack.apiKey }) });
    const cookie = (login.headers.get("Set-Cookie") ?? "").split(";")[0]!;
    expect(cookie).toMatch(/^edgetty_session=/);
    expect((await fetch(`${stack.url}/files/cwd`, { headers: { Cookie: cookie } })).status).toBe(200);
    expect((await fetch(`${stack.url}/files/cwd`, { headers: { Cookie: cookie, Origin: stack.url } })).status).toBe(200);
    // Refused as every family refuses a cookie from another origin (edge/family.ts), here for reads too.
    const foreign = await fetch(`${stack.url}/files/cwd`, { headers: { Cookie: cookie, Origin: "http://evil.example" } });
    expect(foreign.status).toBe(403);
    expect(await foreign.json()).toMatchObject({ code: "ORIGIN_CHECK_FAILED" });
    // The bearer token still works from any origin (that is how Open WebUI's pages call it).
    expect((await fetch(`${stack.url}/files/cwd`, { headers: { Authorization: `Bearer ${stack.apiKey}`, Origin: "http://evil.example" } })).status).toBe(200);
  });
});
