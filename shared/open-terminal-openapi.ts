/**
 * The OpenAPI 3.1 document served at `/openapi.json` for the Open Terminal family, in the shape
 * FastAPI generates for the reference (components, `HTTPBearer`, 422 `HTTPValidationError`).
 *
 * Open WebUI turns every operation that has an `operationId` into a tool for the model. The
 * reference hides /health, /api/config and /api/terminals from its schema; edgetty lists them
 * (so the document describes every route it serves) but without an `operationId`, so the model
 * still sees exactly the reference's execute tools.
 *
 * Values from open-terminal.ts are used only inside the function (that module re-exports this
 * one, so nothing here may touch them while the modules load).
 */
import { DEFAULT_EXEC_TIMEOUT_SECONDS, EXECUTE_WAIT_MAX_SECONDS, NDJSON_CONTENT_TYPE } from "./open-terminal.ts";

export interface OpenApiOptions {
  /** Absolute URL the document's operations are relative to (e.g. `https://edge/api/v1/terminals/web1`). */
  serverUrl?: string;
  /** `info.version`; defaults to edgetty's API version. */
  version?: string;
  /** Facts about the host (OS, shell, user), appended to `run_command`'s description as the reference does. */
  systemInfo?: string;
  /** Operations served beside this family (e.g. the file API), merged into `paths`. */
  extraPaths?: Record<string, Record<string, unknown>>;
}

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });
const nullable = (schema: Json): Json => ({ anyOf: [schema, { type: "null" }] });
const json = (schema: Json): Json => ({ "application/json": { schema } });

function param(name: string, where: "query" | "path", schema: Json, description: string, required = false): Json {
  return { name, in: where, required: where === "path" || required, schema: { title: name, ...schema }, description };
}

/** The OpenAPI 3.1 document for the Open Terminal routes edgetty serves. */
export function openApiDocument(opts: OpenApiOptions = {}): Json {
  const waitMax = EXECUTE_WAIT_MAX_SECONDS;
  const bearer = [{ HTTPBearer: [] }];
  const ok = (schema: Json, description = "Successful Response"): Json => ({ description, content: json(schema) });
  const invalid = { description: "Validation Error", content: json(ref("HTTPValidationError")) };
  const unauthorized = { description: "Invalid or missing API key.", content: json(ref("ErrorDetail")) };
  const notFound = { description: "Process not found.", content: json(ref("ErrorDetail")) };
  const processId = param("process_id", "path", { type: "string" }, "Process id from run_command.");
  const sessionId = param("session_id", "path", { type: "string" }, "Terminal session id.");
  const tail = param("tail", "query", nullable({ type: "integer", minimum: 1 }), "Return only the last N output entries. Useful to limit response size when only recent output matters.");
  const terminalNotFound = { description: "Session not found.", content: json(ref("TerminalError")) };

  const runDescription =
    "Run a shell command (/bin/sh -c) and return its id, status and output. " +
    `With \`wait\` (0-${waitMax} s) the command runs in the background: the call returns when it finishes or \`wait\` runs out, ` +
    "and get_process_status fetches more. With `stream=true` output streams as NDJSON lines " +
    '({"type": "stdout"|"stderr"|"exit", "data": ...}). With neither, the command runs synchronously and is killed ' +
    `after \`timeout\` seconds (default ${DEFAULT_EXEC_TIMEOUT_SECONDS}; exit_code -1).` +
    (opts.systemInfo ? `\n\n${opts.systemInfo}` : "");

  const paths: Json = {
    "/health": {
      get: { summary: "Health check", description: "Returns service status. No authentication required.", security: [], responses: { "200": ok(ref("Health")) } },
    },
    "/api/config": {
      get: { summary: "Server features", description: "Feature flags for client-side discovery. No authentication required.", security: [], responses: { "200": ok(ref("ApiConfig")) } },
    },
    "/execute": {
      get: {
        operationId: "list_processes",
        summary: "List running commands",
        description: "Returns tracked processes, including running, done, and killed.",
        security: bearer,
        responses: { "200": ok({ type: "array", items: ref("ProcessSummary") }), "401": unauthorized },
      },
      post: {
        operationId: "run_command",
        summary: "Execute a command",
        description: runDescription,
        security: bearer,
        parameters: [
          param("stream", "query", { type: "boolean", default: false }, "Stream output as JSONL (application/x-ndjson) instead of waiting for completion."),
          param("wait", "query", nullable({ type: "number", minimum: 0, maximum: waitMax }), "Seconds to wait for the command to finish before returning. If the command completes in time, output is included inline. Null to return immediately."),
          tail,
        ],
        requestBody: { required: true, content: json(ref("ExecRequest")) },
        responses: {
          "200": {
            description: "The process (background mode), the finished run (synchronous mode), or an NDJSON stream.",
            content: { ...json({ anyOf: [ref("ProcessView"), ref("SyncExecResult")] }), [NDJSON_CONTENT_TYPE]: { schema: ref("StreamEvent") } },
          },
          "400": { description: "Working directory not found or the command could not start.", content: json(ref("ErrorDetail")) },
          "401": unauthorized,
          "422": invalid,
          "429": { description: "Too many running processes.", content: json(ref("ErrorDetail")) },
        },
      },
    },
    "/execute/{process_id}/status": {
      get: {
        operationId: "get_process_status",
        summary: "Get command status and output",
        description: "Returns new output since the given offset, process status, and exit code. Reads do not consume output; each reader keeps its own offset.",
        security: bearer,
        parameters: [
          processId,
          param("wait", "query", nullable({ type: "number", minimum: 0, maximum: waitMax }), "Seconds to wait for the process to finish before returning. Returns early if the process exits. Null to return immediately."),
          param("offset", "query", { type: "integer", minimum: 0, default: 0 }, "Number of output entries to skip. Use next_offset from the previous response to get only new output."),
          tail,
        ],
        responses: { "200": ok(ref("ProcessView")), "401": unauthorized, "404": notFound, "422": invalid },
      },
    },
    "/execute/{process_id}/input": {
      post: {
        operationId: "send_process_input",
        summary: "Send input to a running command",
        description: "Write text to the process's stdin. Include newline characters as needed.",
        security: bearer,
        parameters: [processId],
        requestBody: { required: true, content: json(ref("InputRequest")) },
        responses: {
          "200": ok(ref("StatusOk")),
          "400": { description: "Process has already exited or stdin is closed.", content: json(ref("ErrorDetail")) },
          "401": unauthorized,
          "404": notFound,
          "422": invalid,
        },
      },
    },
    "/execute/{process_id}": {
      delete: {
        operationId: "kill_process",
        summary: "Kill a running command",
        description: "Terminate the process. Sends SIGTERM by default for graceful shutdown. Use force=true to send SIGKILL.",
        security: bearer,
        parameters: [processId, param("force", "query", { type: "boolean", default: false }, "Send SIGKILL instead of SIGTERM.")],
        responses: { "200": ok(ref("KillResult")), "401": unauthorized, "404": notFound, "422": invalid },
      },
    },
    "/api/terminals": {
      post: {
        summary: "Create a terminal session",
        description: "Starts an interactive shell (PTY) and returns its id; attach with a WebSocket to /api/terminals/{session_id}.",
        security: bearer,
        responses: { "200": ok(ref("TerminalInfo")), "401": unauthorized, "429": { description: "Too many terminal sessions.", content: json(ref("TerminalError")) } },
      },
      get: { summary: "List terminal sessions", security: bearer, responses: { "200": ok({ type: "array", items: ref("TerminalInfo") }), "401": unauthorized } },
    },
    "/api/terminals/{session_id}": {
      get: {
        summary: "Get a terminal session",
        description:
          "Returns the session. The same path accepts a WebSocket: send {\"type\": \"auth\", \"token\": \"<api key>\"} first, " +
          'then keystrokes as binary frames; text frames {"type": "resize", "cols": N, "rows": N} resize. Output arrives as binary frames.',
        security: bearer,
        parameters: [sessionId],
        responses: { "200": ok(ref("TerminalInfo")), "401": unauthorized, "404": terminalNotFound },
      },
      delete: {
        summary: "Kill a terminal session",
        security: bearer,
        parameters: [sessionId],
        responses: { "200": ok({ type: "object", properties: { status: { const: "deleted" } }, required: ["status"] }), "401": unauthorized, "404": terminalNotFound },
      },
    },
    ...opts.extraPaths,
  };

  const str = { type: "string" };
  const exitCode = nullable({ type: "integer" });
  const summaryProps = { id: str, command: str, status: { type: "string", enum: ["running", "done", "killed"] }, exit_code: exitCode };
  const viewProps = { ...summaryProps, output: { type: "array", items: ref("OutputEntry") }, truncated: { type: "boolean" }, next_offset: { type: "integer" } };
  const obj = (title: string, properties: Json, required: string[]): Json => ({ title, type: "object", properties, required });

  const schemas: Json = {
    ExecRequest: obj(
      "ExecRequest",
      {
        command: { ...str, title: "Command", description: "Shell command to execute. Supports chaining (&&, ||, ;), pipes (|), and redirections.", examples: ["echo hello", "ls -la && whoami"] },
        cwd: { ...nullable(str), title: "Cwd", description: "Working directory for the command. Defaults to the agent's home directory if not set." },
        env: { ...nullable({ type: "object", additionalProperties: str }), title: "Env", description: "Extra environment variables merged into the subprocess environment." },
        timeout: { ...nullable({ type: "number", minimum: 0 }), title: "Timeout", default: DEFAULT_EXEC_TIMEOUT_SECONDS, description: "Synchronous and streaming modes: max execution time in seconds. Process is killed if exceeded (exit_code: -1). Null to disable." },
      },
      ["command"],
    ),
    InputRequest: obj("InputRequest", { input: { ...str, title: "Input", description: "Text to send to the process's stdin. Include newline characters as needed." } }, ["input"]),
    OutputEntry: obj("OutputEntry", { type: { type: "string", enum: ["stdout", "stderr"] }, data: str }, ["type", "data"]),
    ProcessSummary: obj("ProcessSummary", summaryProps, ["id", "command", "status", "exit_code"]),
    ProcessView: obj("ProcessView", viewProps, ["id", "command", "status", "exit_code", "output", "truncated", "next_offset"]),
    SyncExecResult: obj("SyncExecResult", { ...viewProps, exit_code: { type: "integer", description: "0 = success, non-zero = error, -1 = timeout." }, stdout: str, stderr: str }, ["exit_code", "stdout", "stderr"]),
    StreamEvent: obj("StreamEvent", { type: { type: "string", enum: ["stdout", "stderr", "exit"] }, data: { anyOf: [str, { type: "integer" }] } }, ["type", "data"]),
    StatusOk: obj("StatusOk", { status: { const: "ok" } }, ["status"]),
    KillResult: obj("KillResult", { status: { const: "killed" } }, ["status"]),
    Health: obj("Health", { status: { const: "ok" } }, ["status"]),
    ApiConfig: obj("ApiConfig", { features: obj("Features", { terminal: { type: "boolean" }, notebooks: { type: "boolean" }, system: { type: "boolean" } }, ["terminal", "notebooks", "system"]) }, ["features"]),
    TerminalInfo: obj("TerminalInfo", { id: str, created_at: { type: "string", format: "date-time" }, pid: { type: "integer" } }, ["id", "created_at", "pid"]),
    TerminalError: obj("TerminalError", { error: str }, ["error"]),
    ErrorDetail: obj("ErrorDetail", { detail: str, code: str }, ["detail"]),
    ValidationError: obj(
      "ValidationError",
      { loc: { type: "array", items: { anyOf: [str, { type: "integer" }] } }, msg: str, type: str, input: {}, ctx: { type: "object" } },
      ["loc", "msg", "type"],
    ),
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
