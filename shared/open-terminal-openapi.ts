/**
 * The OpenAPI 3.1 document served at `/openapi.json` for the Open Terminal family, in the shape
 * FastAPI generates for the reference (components, `HTTPBearer`, 422 `HTTPValidationError`).
 *
 * Open WebUI turns every operation that has an `operationId` into a tool for the model, so the
 * document lists exactly the reference's model tools with the same ids and parameters:
 * list_files, read_file, display_file, write_file, replace_file_content, grep_search,
 * glob_search, list_processes, run_command, get_process_status, send_process_input,
 * kill_process (and get_info when an info text is configured). The routes the UI uses (file
 * browser, terminals, ports, proxy…) stay out of it, as in the reference. Seed 004's `stream`
 * and `timeout` work but are not offered: a model that set them would get seed 004's answers.
 */
import { EXECUTE_WAIT_MAX_SECONDS } from "./open-terminal-execute.ts";
import { GLOB_TYPE_PATTERN, GREP_MAX_RESULTS_LIMIT, SEARCH_DEFAULT_RESULTS } from "./open-terminal-files.ts";

export interface OpenApiOptions {
  /** Absolute URL the document's operations are relative to (e.g. `https://edge/api/v1/terminals/web1`). */
  serverUrl?: string;
  /** `info.version`; defaults to edgetty's API version. */
  version?: string;
  /** Facts about the host (OS, shell, user), appended to `run_command`'s description as the reference does. */
  systemInfo?: string;
  /** Extra text for `run_command`'s description (the reference's OPEN_TERMINAL_EXECUTE_DESCRIPTION). */
  executeDescription?: string;
  /** Set when `/info` answers (an info text is configured): adds the `get_info` tool. */
  info?: boolean;
}

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: Json): Json => ({ anyOf: [schema, { type: "null" }] });
const json = (schema: Json): Json => ({ "application/json": { schema } });
const str = { type: "string" };

function param(name: string, where: "query" | "path", schema: Json, description: string, required = false): Json {
  return { name, in: where, required: where === "path" || required, schema: { title: name, ...schema }, description };
}

function obj(title: string, properties: Json, required: string[]): Json {
  return { title, type: "object", properties, required };
}

/** The OpenAPI 3.1 document for the Open Terminal model tools edgetty serves. */
export function openApiDocument(opts: OpenApiOptions = {}): Json {
  const waitMax = EXECUTE_WAIT_MAX_SECONDS;
  const bearer = [{ HTTPBearer: [] }];
  const ok = (schema: Json): Json => ({ description: "Successful Response", content: json(schema) });
  const invalid = { description: "Validation Error", content: json(ref("HTTPValidationError")) };
  const err = (description: string): Json => ({ description, content: json(ref("ErrorDetail")) });
  const op = (operationId: string, summary: string, description: string, parameters: Json[], responses: Json, body?: string): Json => ({
    operationId,
    summary,
    description,
    security: bearer,
    ...(parameters.length ? { parameters } : {}),
    ...(body ? { requestBody: { required: true, content: json(ref(body)) } } : {}),
    responses: { ...responses, "401": err("Invalid or missing API key."), "422": invalid },
  });
  const processId = param("process_id", "path", str, "Process id from run_command.");
  const wait = (what: string) => param("wait", "query", nullable({ type: "number", minimum: 0, maximum: waitMax }), `Seconds (0-${waitMax}) to wait for the process to finish before ${what}. Returns early when it ends. Omit to return at once.`);
  const tail = param("tail", "query", nullable({ type: "integer", minimum: 1 }), "Return only the last N output entries.");
  const maxResults = param("max_results", "query", { type: "integer", minimum: 1, maximum: GREP_MAX_RESULTS_LIMIT, default: SEARCH_DEFAULT_RESULTS }, "Most matches to return.");
  const searchPath = (what: string) => param("path", "query", { type: "string", default: "." }, `${what} (relative paths resolve against the working directory).`);

  const runDescription =
    "Run a shell command (/bin/sh -c) in the background on a terminal (stdout and stderr merged) and return its id, status and output so far. " +
    "Without `wait` it returns at once with status running; use get_process_status to follow it, send_process_input to answer prompts and kill_process to stop it. " +
    "The full output is also written to the JSONL file at log_path." +
    (opts.executeDescription ? `\n\n${opts.executeDescription}` : "") +
    (opts.systemInfo ? `\n\n${opts.systemInfo}` : "");

  const paths: Json = {
    "/files/list": {
      get: op("list_files", "List directory contents", "List the entries of a directory (name, type, size, modified time).", [param("directory", "query", { type: "string", default: "." }, "Directory to list.")], { "200": ok(ref("ListResult")), "404": err("Directory not found.") }),
    },
    "/files/read": {
      get: op(
        "read_file",
        "Read a file",
        "Read a text file, optionally a range of lines. Documents (PDF, Word, Excel, PowerPoint, OpenDocument, RTF, EPUB) are returned as extracted text; images as raw bytes.",
        [param("path", "query", str, "File to read.", true), param("start_line", "query", nullable({ type: "integer", minimum: 1 }), "First line to return (1-based)."), param("end_line", "query", nullable({ type: "integer", minimum: 1 }), "Last line to return (inclusive).")],
        { "200": ok(ref("ReadResult")), "404": err("File not found."), "415": err("Unsupported binary file type.") },
      ),
    },
    "/files/display": {
      get: op("display_file", "Show a file to the user", "Ask the user's client to display a file (an image, a page, a document). Returns whether it exists.", [param("path", "query", str, "File to display.", true)], { "200": ok(ref("DisplayResult")) }),
    },
    "/files/write": {
      post: op("write_file", "Write a file", "Create or overwrite a text file; parent directories are created.", [], { "200": ok(ref("WriteResult")), "400": err("The path cannot be written.") }, "WriteRequest"),
    },
    "/files/replace": {
      post: op(
        "replace_file_content",
        "Replace text in a file",
        "Apply exact-text replacements to a file, in order. Each target must occur once unless allow_multiple is true; start_line/end_line limit where it is looked for.",
        [],
        { "200": ok(ref("WriteResult")), "400": err("A target was not found or occurs more than once."), "404": err("File not found.") },
        "ReplaceRequest",
      ),
    },
    "/files/grep": {
      get: op(
        "grep_search",
        "Search file contents",
        "Search files under a path for a regular expression (or a literal string). Binary files are skipped.",
        [
          param("query", "query", str, "Regular expression or literal text.", true),
          searchPath("File or directory to search"),
          param("regex", "query", { type: "boolean", default: true }, "Treat query as a regular expression."),
          param("case_insensitive", "query", { type: "boolean", default: false }, "Ignore case."),
          param("include", "query", nullable({ type: "array", items: str }), "Only files matching these glob patterns (e.g. *.py)."),
          param("match_per_line", "query", { type: "boolean", default: true }, "Return each matching line; false returns matching files only."),
          maxResults,
        ],
        { "200": ok(ref("GrepResult")), "400": err("Invalid regex."), "404": err("Search path not found.") },
      ),
    },
    "/files/glob": {
      get: op(
        "glob_search",
        "Find files by name",
        "Find files and directories whose path matches a glob pattern (e.g. **/*.ts).",
        [
          param("pattern", "query", str, "Glob pattern.", true),
          searchPath("Directory to search"),
          param("exclude", "query", nullable({ type: "array", items: str }), "Glob patterns to leave out."),
          param("type", "query", { ...nullable({ type: "string", pattern: GLOB_TYPE_PATTERN }), default: "any" }, "Kind of entries to return: file, directory or any."),
          maxResults,
        ],
        { "200": ok(ref("GlobResult")), "404": err("Search directory not found.") },
      ),
    },
    "/execute": {
      get: op("list_processes", "List commands", "Returns tracked processes: running, done and killed.", [], { "200": ok({ type: "array", items: ref("ProcessSummary") }) }),
      post: op("run_command", "Run a command", runDescription, [wait("returning"), tail], { "200": ok(ref("ProcessView")), "400": err("Working directory not found or the command could not start.") }, "ExecRequest"),
    },
    "/execute/{process_id}/status": {
      get: op(
        "get_process_status",
        "Get command status and output",
        "Returns output since `offset`, the status and the exit code. Pass next_offset back as offset to get only new output.",
        [processId, wait("answering"), param("offset", "query", { type: "integer", minimum: 0, default: 0 }, "Output entries to skip."), tail],
        { "200": ok(ref("ProcessView")), "404": err("Process not found.") },
      ),
    },
    "/execute/{process_id}/input": {
      post: op("send_process_input", "Send input to a command", "Write text to the command's terminal. Include \\n to press Enter; escapes like \\x03 (Ctrl-C) are decoded.", [processId], { "200": ok(ref("StatusOk")), "400": err("Process has already exited."), "404": err("Process not found.") }, "InputRequest"),
    },
    "/execute/{process_id}": {
      delete: op("kill_process", "Kill a command", "Terminate the command and everything it started (SIGTERM; force=true sends SIGKILL). The process is then forgotten.", [processId, param("force", "query", { type: "boolean", default: false }, "Send SIGKILL instead of SIGTERM.")], { "200": ok(ref("KillResult")), "404": err("Process not found.") }),
    },
  };
  if (opts.info) {
    paths["/info"] = { get: op("get_info", "About this system", "Information about this terminal server provided by its operator.", [], { "200": ok(obj("InfoResult", { info: str }, ["info"])) }) };
  }

  const exitCode = nullable({ type: "integer" });
  const status = { type: "string", enum: ["running", "done", "killed"] };
  const summaryProps = { id: str, command: str, status, exit_code: exitCode, log_path: str };
  const entry = { type: "object", properties: { name: str, type: { type: "string", enum: ["file", "directory"] }, size: { type: "integer" }, modified: { type: "number" } } };

  const schemas: Json = {
    ExecRequest: obj(
      "ExecRequest",
      {
        command: { ...str, title: "Command", description: "Shell command. Supports chaining (&&, ||, ;), pipes and redirections.", examples: ["echo hello", "ls -la && whoami"] },
        cwd: { ...nullable(str), title: "Cwd", description: "Working directory; defaults to the session's working directory or home." },
        env: { ...nullable({ type: "object", additionalProperties: str }), title: "Env", description: "Extra environment variables." },
      },
      ["command"],
    ),
    InputRequest: obj("InputRequest", { input: { ...str, title: "Input", description: "Text to send. Include \\n to press Enter." } }, ["input"]),
    OutputEntry: obj("OutputEntry", { type: { type: "string", enum: ["output", "stdout", "stderr"] }, data: str }, ["type", "data"]),
    ProcessSummary: obj("ProcessSummary", summaryProps, ["id", "command", "status", "exit_code", "log_path"]),
    ProcessView: obj("ProcessView", { ...summaryProps, output: { type: "array", items: ref("OutputEntry") }, truncated: { type: "boolean" }, next_offset: { type: "integer" } }, ["id", "command", "status", "exit_code", "output", "truncated", "next_offset", "log_path"]),
    StatusOk: obj("StatusOk", { status: { const: "ok" } }, ["status"]),
    KillResult: obj("KillResult", { status: { const: "killed" } }, ["status"]),
    ListResult: obj("ListResult", { dir: str, entries: { type: "array", items: entry } }, ["dir", "entries"]),
    ReadResult: obj("ReadResult", { path: str, total_lines: { type: "integer" }, content: str }, ["path", "total_lines", "content"]),
    DisplayResult: obj("DisplayResult", { path: str, exists: { type: "boolean" } }, ["path", "exists"]),
    WriteRequest: obj("WriteRequest", { path: { ...str, description: "File to write." }, content: { ...str, description: "The whole new content." } }, ["path", "content"]),
    WriteResult: obj("WriteResult", { path: str, size: { type: "integer" } }, ["path", "size"]),
    Replacement: obj(
      "Replacement",
      {
        target: { ...str, description: "Exact text to replace." },
        replacement: { ...str, description: "Text to put in its place." },
        start_line: { ...nullable({ type: "integer", minimum: 1 }), description: "Only look from this line (1-based)." },
        end_line: { ...nullable({ type: "integer", minimum: 1 }), description: "Only look up to this line (inclusive)." },
        allow_multiple: { type: "boolean", default: false, description: "Replace every occurrence instead of requiring exactly one." },
      },
      ["target", "replacement"],
    ),
    ReplaceRequest: obj("ReplaceRequest", { path: { ...str, description: "File to edit." }, replacements: { type: "array", items: ref("Replacement") } }, ["path", "replacements"]),
    GrepResult: obj("GrepResult", { query: str, path: str, matches: { type: "array", items: { type: "object", properties: { file: str, line: { type: "integer" }, content: str } } }, truncated: { type: "boolean" } }, ["query", "path", "matches", "truncated"]),
    GlobResult: obj("GlobResult", { pattern: str, path: str, matches: { type: "array", items: { type: "object", properties: { path: str, type: str, size: { type: "integer" }, modified: { type: "number" } } } }, truncated: { type: "boolean" } }, ["pattern", "path", "matches", "truncated"]),
    ErrorDetail: obj("ErrorDetail", { detail: str, code: str }, ["detail"]),
    ValidationError: obj("ValidationError", { loc: { type: "array", items: { anyOf: [str, { type: "integer" }] } }, msg: str, type: str, input: {}, ctx: { type: "object" } }, ["loc", "msg", "type"]),
    HTTPValidationError: obj("HTTPValidationError", { detail: { type: "array", items: ref("ValidationError") }, code: str }, []),
  };

  return {
    openapi: "3.1.0",
    info: { title: "Open Terminal", description: "A remote terminal API.", version: opts.version ?? "0.1.0" },
    ...(opts.serverUrl ? { servers: [{ url: opts.serverUrl }] } : {}),
    paths,
    components: { schemas, securitySchemes: { HTTPBearer: { type: "http", scheme: "bearer" } } },
  };
}
