/**
 * Turns the shell-integration marks that edgetty's shell hooks print (see launch.ts) into command
 * records and working-directory changes. Fed the `(code, data)` of every OSC the OscScanner finds.
 *
 * The marks (VS Code's OSC 633 vocabulary, plus a nonce where a record changes):
 *   633;A / 633;B                  prompt start / end (informational)
 *   633;E;<escaped cmdline>;<nonce> the command line about to run: starts a record
 *   633;C                          output starts (informational)
 *   633;D;<exit>;<nonce>           the command finished: completes the running record
 *   7;file://host/path             the working directory (percent-encoded path)
 * Only the shell knows the nonce (it is written into its init file, never exported), so a
 * program that prints look-alike marks (`printf '\e]633;E;rm -rf /\a'`) creates no record and
 * cannot end one.
 */

import type { CommandRecord } from "../../../shared/history.ts";

/** One command run at the prompt, as the history endpoint reports it (the wire type). */
export type { CommandRecord };

/** Records kept in memory per terminal; the oldest is dropped first (the edge keeps them durably). */
export const COMMAND_RECORDS_MAX = 1000;

/** Called when a record starts (status "running") and again when it finishes ("done"). */
export type RecordHandler = (record: CommandRecord) => void;

export interface CommandTrackerOptions {
  /** Called when the shell reports a new working directory. */
  onCwd?: (cwd: string) => void;
  /** The working directory until the shell reports one. */
  cwd?: string;
  /** Clock in milliseconds since the epoch (tests pass their own). */
  now?: () => number;
}

/** Builds command records from one shell's OSC marks. */
export class CommandTracker {
  private readonly records: CommandRecord[] = [];
  private running: { record: CommandRecord; startedMs: number } | null = null;
  private nextId = 1;
  private currentCwd: string;
  private readonly now: () => number;

  /** `nonce`: the one given to planShellLaunch for this shell. */
  constructor(
    private readonly nonce: string,
    private readonly onRecord: RecordHandler,
    private readonly options: CommandTrackerOptions = {},
  ) {
    this.currentCwd = options.cwd ?? "";
    this.now = options.now ?? Date.now;
  }

  /** The shell's last reported working directory. */
  get cwd(): string {
    return this.currentCwd;
  }

  /** Records still in memory, oldest first; at most `limit` of the newest when given. */
  list(limit?: number): CommandRecord[] {
    const from = limit === undefined ? 0 : Math.max(0, this.records.length - Math.max(0, limit));
    return this.records.slice(from).map((r) => ({ ...r }));
  }

  /** Handles one OSC sequence; anything that is not a shell-integration mark is ignored. */
  feed(code: string, data: string): void {
    if (code === "7") this.setCwd(parseFileUrl(data));
    else if (code === "633") this.mark(data);
  }

  private mark(data: string): void {
    const fields = data.split(";");
    const kind = fields[0];
    if (kind === "E" && fields.length === 3 && fields[2] === this.nonce) {
      this.start(unescapeValue(fields[1]!));
    } else if (kind === "D" && fields.length === 3 && fields[2] === this.nonce) {
      const exit = /^-?\d{1,10}$/.test(fields[1]!) ? Number(fields[1]) : null;
      this.finish(exit);
    }
  }

  private start(command: string): void {
    if (this.running) this.finish(null); // the shell never reported the last one's end
    const startedMs = this.now();
    const record: CommandRecord = {
      id: this.nextId++,
      command,
      cwd: this.currentCwd,
      exit_code: null,
      started_at: new Date(startedMs).toISOString(),
      finished_at: null,
      duration_ms: null,
      status: "running",
    };
    this.records.push(record);
    if (this.records.length > COMMAND_RECORDS_MAX) this.records.shift();
    this.running = { record, startedMs };
    this.onRecord({ ...record });
  }

  private finish(exitCode: number | null): void {
    const running = this.running;
    if (!running) return;
    this.running = null;
    const end = this.now();
    const r = running.record;
    r.exit_code = exitCode;
    r.finished_at = new Date(end).toISOString();
    r.duration_ms = Math.max(0, end - running.startedMs);
    r.status = "done";
    this.onRecord({ ...r });
  }

  private setCwd(cwd: string | null): void {
    if (cwd === null || cwd === this.currentCwd) return;
    this.currentCwd = cwd;
    this.options.onCwd?.(cwd);
  }
}

/** Reverses the hooks' escaping: `\\` → `\`, `\xHH` → that byte (UTF-8 sequences rejoined). */
export function unescapeValue(s: string): string {
  if (!s.includes("\\")) return s;
  const bytes: number[] = [];
  const out: string[] = [];
  const flush = (): void => {
    if (bytes.length) out.push(Buffer.from(bytes).toString("utf8"));
    bytes.length = 0;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "\\" && s[i + 1] === "\\") {
      flush();
      out.push("\\");
      i++;
    } else if (c === "\\" && s[i + 1] === "x" && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      bytes.push(parseInt(s.slice(i + 2, i + 4), 16));
      i += 3;
    } else {
      flush();
      out.push(c);
    }
  }
  flush();
  return out.join("");
}

/** The path of an OSC 7 `file://host/path` URL, percent-decoded; null if it is not one. */
export function parseFileUrl(data: string): string | null {
  const m = /^file:\/\/[^/]*(\/.*)$/.exec(data);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]!);
  } catch {
    return m[1]!; // not UTF-8 after decoding: keep it as sent
  }
}
