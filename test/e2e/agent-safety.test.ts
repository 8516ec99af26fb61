/**
 * What a terminal's processes can reach and how they end, through the real stack: no inherited
 * descriptors (so a shell of another user cannot type into a root terminal's PTY master), DELETE
 * and an agent's death end every process of a terminal, typeahead is held and delivered, and the
 * create options `cwd: "~name/…"` and `env: {…}` mean what they say.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readProcessTag } from "../../worker/agent/process-reaper.ts";
import { INPUT_GATE_MAX_MS } from "../../worker/agent/input-gate.ts";
import { useStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";
import { until } from "../support/waiters.ts";

const stack = useStack();
const isRoot = process.getuid?.() === 0;
/** How often a wait for a process to end looks at /proc, in milliseconds. */
const PROC_POLL_MS = 50;

async function create(body: Record<string, unknown>): Promise<Response> {
  return stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify(body) });
}

async function createOk(body: Record<string, unknown>): Promise<void> {
  const res = await create(body);
  expect(res.status, await res.clone().text()).toBe(200);
}

async function attach(id: number): Promise<TermClient> {
  const client = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=${id}`, { apiKey: stack.apiKey });
  stack.track(client);
  return client;
}

/** Runs `command` in the terminal and returns what it printed between two markers. */
async function run(client: TermClient, command: string, marker: string): Promise<string> {
  // The markers are split by quotes as typed, so only the command's output holds them whole: a
  // prompt printed after the echoed line (input typed ahead of it) cannot confuse the match.
  client.input(`echo ${marker}-BE''GIN; ${command}; echo ${marker}-E''ND\r`);
  const re = new RegExp(`${marker}-BEGIN\\r?\\n([\\s\\S]*?)${marker}-END`);
  await client.waitForText(re);
  return re.exec(client.text())![1]!;
}

/** `ls -l /proc/…/fd` lines as [fd, target]. */
function fdsOf(listing: string): [number, string][] {
  const out: [number, string][] = [];
  for (const line of listing.split(/\r?\n/)) {
    const m = / (\d+) -> (.*)$/.exec(line.trim());
    if (m) out.push([Number(m[1]), m[2]!]);
  }
  return out;
}

function alive(pid: number): boolean {
  return existsSync(`/proc/${pid}`) && !/\) [ZX] /.test(readFileSync(`/proc/${pid}/stat`, "latin1"));
}

/** Resolves once none of `pids` runs; otherwise kills the survivors and fails naming them. */
async function waitGone(pids: number[], timeoutMs = 20_000): Promise<void> {
  const left = () =>
    pids.filter((pid) => {
      try {
        return alive(pid);
      } catch {
        return false;
      }
    });
  try {
    await until("the processes to end", () => left().length === 0, { timeoutMs, everyMs: PROC_POLL_MS, describe: () => `; still running: ${left().join(", ")}` });
  } catch (error) {
    for (const pid of left()) process.kill(pid, "SIGKILL");
    throw error;
  }
}

/** Live processes whose edgetty tag matches `pattern` (read from /proc like the agent does). */
function taggedPids(pattern: RegExp): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => pattern.test(readProcessTag(pid) ?? ""));
}

function pidsIn(text: string, label: string): number[] {
  return [...text.matchAll(new RegExp(`${label}=(\\d+)`, "g"))].map((m) => Number(m[1]));
}

describe("descriptors", () => {
  it("gives a shell of another user no descriptor of an earlier root terminal to write into", { skip: !isRoot }, async () => {
    await createOk({ terminal_id: "901", shell: "bash" });
    await createOk({ terminal_id: "902", shell: "sh" });
    const marker = join(stack.stateDir, "pwned");
    await createOk({ terminal_id: "903", shell: "sh", user: "nobody" });
    const rootTerm = await attach(901);
    const nobody = await attach(903);
    expect(await run(nobody, "id -un", "WHO")).toContain("nobody");
    // The attack: every descriptor of the shell that is a PTY master gets a command typed into it.
    const attack = `for f in /proc/$$/fd/*; do case $(readlink $f) in /dev/ptmx) echo "touch ${marker}" > $f; echo wrote-$f;; esac; done`;
    const attempt = await run(nobody, attack, "ATK");
    expect(attempt).not.toContain("wrote-");
    const shellFds = fdsOf(await run(nobody, "ls -l /proc/$$/fd", "SHELLFD"));
    const childFds = fdsOf(await run(nobody, "ls -l /proc/self/fd", "CHILDFD"));
    expect(shellFds.length).toBeGreaterThanOrEqual(3);
    for (const [, target] of [...shellFds, ...childFds]) expect(target).not.toMatch(/ptmx|pipe:|socket:|anon_inode/);
    // The child has 0-2 (its terminal) and the directory `ls` itself opened.
    expect(childFds.map(([fd]) => fd).sort()).toEqual([0, 1, 2, 3]);
    // Root's terminal still works and never ran the attacker's line.
    expect(await run(rootTerm, "echo alive", "ROOT")).toContain("alive");
    expect(existsSync(marker)).toBe(false);
  });

  it("gives root shells, their children and /execute commands only descriptors 0-2", async () => {
    await createOk({ terminal_id: "904", shell: "bash" });
    await createOk({ terminal_id: "905", shell: "bash" });
    const term = await attach(905);
    const childFds = fdsOf(await run(term, "ls -l /proc/self/fd", "BFD"));
    expect(childFds.map(([fd]) => fd).sort()).toEqual([0, 1, 2, 3]);
    for (const [, target] of childFds) expect(target).not.toMatch(/ptmx|socket:|anon_inode/);

    for (const query of ["", "?stream=true", "?wait=10"]) {
      // No query: seed 004's synchronous run, chosen by its `timeout`; ?wait=: the background model on a PTY.
      const body0 = query === "" ? { command: "ls -l /proc/self/fd", timeout: 30 } : { command: "ls -l /proc/self/fd" };
      const res = await stack.api(`/execute${query}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body0) });
      expect(res.status).toBe(200);
      const body = await res.text();
      const text = query === "?stream=true"
        ? body.trim().split("\n").map((l) => JSON.parse(l) as { type: string; data: unknown }).filter((l) => l.type === "stdout").map((l) => l.data).join("")
        : query === "?wait=10"
          ? (JSON.parse(body) as { output: { data: string }[] }).output.map((o) => o.data).join("")
          : (JSON.parse(body) as { stdout: string }).stdout;
      // 0-2 are the command's own stdin and output (pipes or socket pairs, or its PTY).
      const fds = fdsOf(text);
      expect(fds.map(([fd]) => fd).sort(), `${query}: ${text}`).toEqual([0, 1, 2, 3]);
      expect(fds.find(([fd]) => fd === 3)?.[1]).toMatch(/^\/proc\/\d+\/fd$/);
    }
  });
});

describe("a terminal's processes end with it", () => {
  it("DELETE ends background jobs, HUP-immune jobs and jobs in another session", async () => {
    await createOk({ terminal_id: "911", shell: "sh" });
    await createOk({ terminal_id: "912", shell: "bash" });
    const sh = await attach(911);
    const bash = await attach(912);
    sh.input("sleep 31001 & echo bg=$!\r");
    await sh.waitForText(/bg=\d+/);
    sh.input("trap '' HUP; sleep 31002 & echo immune=$!\r");
    await sh.waitForText(/immune=\d+/);
    bash.input("trap '' HUP; sleep 31003 & echo immune=$!\r");
    await bash.waitForText(/immune=\d+/);
    // setsid forks when it leads a process group (a job does): the pid printed is the sleep's own.
    bash.input("setsid sh -c 'echo moved=$$; exec sleep 31004' &\r");
    await bash.waitForText(/moved=\d+/);
    bash.input("sleep 31005 & echo bg=$!\r");
    await bash.waitForText(/bg=\d+/);
    const pids = [...pidsIn(sh.text(), "bg"), ...pidsIn(sh.text(), "immune"), ...pidsIn(bash.text(), "immune"), ...pidsIn(bash.text(), "moved"), ...pidsIn(bash.text(), "bg")];
    expect(pids).toHaveLength(5);
    for (const pid of pids) expect(alive(pid)).toBe(true);

    for (const id of [911, 912]) expect((await stack.api(`/api/v1/terminal/${id}`, { method: "DELETE" })).status).toBe(200);
    await sh.waitFor(() => sh.exit !== null, "EXIT of the sh terminal");
    await bash.waitFor(() => bash.exit !== null, "EXIT of the bash terminal");
    // The id is reused while the old terminal's clean-up still runs: the new shell is not its target.
    await createOk({ terminal_id: "911", shell: "sh" });
    // Its shell's tag is read from /proc/<pid>/environ, which reads empty while an exec is under way.
    let fresh: number[] = [];
    await until("the new terminal 911's tagged shell", () => (fresh = taggedPids(/\.t911-\d+$/).filter((pid) => !pids.includes(pid))).length > 0);
    await waitGone(pids);
    expect(fresh.filter(alive)).toEqual(fresh);
    const again = await attach(911);
    expect(await run(again, "echo still-here", "AGAIN")).toContain("still-here");
  });

  it("an agent that is stopped ends its terminals' HUP-immune jobs before it exits", async () => {
    await createOk({ terminal_id: "922", shell: "bash" });
    const term = await attach(922);
    term.input("trap '' HUP; sleep 31021 & echo immune=$!\r");
    await term.waitForText(/immune=\d+/);
    const pids = pidsIn(term.text(), "immune");
    expect(pids).toHaveLength(1);
    const old = stack.agent;
    const exited = old.exited;
    old.kill("SIGTERM");
    await exited;
    // Checked before any new agent runs: the stopping agent did it itself.
    expect(pids.filter(alive)).toEqual([]);
    await stack.restartAgent();
  });

  it("a restarted agent ends what its killed predecessor's terminals left running", async () => {
    await createOk({ terminal_id: "921", shell: "bash" });
    const term = await attach(921);
    term.input("trap '' HUP; sleep 31011 & echo immune=$!\r");
    await term.waitForText(/immune=\d+/);
    term.input("sleep 31012 & echo bg=$!\r");
    await term.waitForText(/bg=\d+/);
    const pids = [...pidsIn(term.text(), "immune"), ...pidsIn(term.text(), "bg")];
    expect(pids).toHaveLength(2);
    const old = stack.agent;
    const exited = old.exited;
    old.kill("SIGKILL");
    await exited;
    // The HUP-immune job outlives the agent (and its PTY) for now…
    expect(alive(pids[0]!)).toBe(true);
    await stack.restartAgent();
    // …until the next agent finds it by its tag and ends it.
    await waitGone(pids);
  });
});

describe("typeahead", () => {
  it("delivers a 100 KB paste sent before the shell is ready, whole", async () => {
    const slowStart = join(stack.stateDir, "slow-start.sh");
    writeFileSync(slowStart, "sleep 1\n");
    const file = join(stack.stateDir, "paste.txt");
    const lines = Array.from({ length: 1_000 }, (_, i) => `${String(i).padStart(4, "0")} ${"x".repeat(95)}`);
    const paste = lines.join("\n") + "\n";
    expect(paste.length).toBeGreaterThanOrEqual(100_000);
    await createOk({ terminal_id: "931", shell: "sh", env: [`ENV=${slowStart}`] });
    const term = await attach(931);
    term.input(`cat > ${file}\n${paste}\x04echo pasted-$((6*7))\n`);
    await term.waitForText("pasted-42", 60_000);
    expect(readFileSync(file, "utf8")).toBe(paste);
  });

  it("releases typeahead within the 2 s cap even while the shell keeps printing", async () => {
    // The shell's start-up prints without pause until it can read a line from the terminal.
    const chatty = join(stack.stateDir, "chatty.sh");
    // (bash's read -t on a pipe that stays silent paces the printer without forking.)
    const printer = "exec 9< <(exec sleep 1000); while :; do printf .; read -t 0.005 -u 9; done";
    writeFileSync(chatty, `bash -c '${printer}' & printer=$!\nread -r line\nkill $printer\necho "got-$line"\n`);
    // Created by the attach itself, so the input is on its way as the shell starts printing.
    const term = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=932&shell=sh&env=${encodeURIComponent(`ENV=${chatty}`)}`, { apiKey: stack.apiKey });
    stack.track(term);
    term.input("typed-ahead\r");
    // Released 2 s after the start at the latest; the wait allows four times that for a loaded
    // host. (Holding it until the output pauses, as before, waits for a 60 ms stall: often longer.)
    await term.waitForText("got-typed-ahead", 4 * INPUT_GATE_MAX_MS);
  });
});

describe("create options", () => {
  it("resolves cwd ~name/x to name's home, and cwd_auto_create creates it there", async () => {
    const me = userInfo();
    const dir = join(me.homedir, `edgetty-tilde-${process.pid}`);
    try {
      await createOk({ terminal_id: "941", shell: "sh", cwd: `~${me.username}/edgetty-tilde-${process.pid}/x`, cwd_auto_create: true });
      const term = await attach(941);
      expect((await run(term, "pwd", "PWD")).trim()).toBe(join(dir, "x"));
      expect(existsSync(join(dir, "x"))).toBe(true);
      expect(existsSync(`${stack.home}${me.username}`)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const unknown = await create({ terminal_id: "942", cwd: "~no-such-user-x/y", cwd_auto_create: true });
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ statusCode: 400, error: "Bad Request", code: "INVALID_CWD" });
  });

  it("takes env as an object, and refuses an env it cannot use with 400 instead of dropping it", async () => {
    await createOk({ terminal_id: "943", shell: "sh", env: { H1_OBJ_VAR: "from-object" } });
    const term = await attach(943);
    expect(await run(term, 'echo "v=$H1_OBJ_VAR"', "ENVOBJ")).toContain("v=from-object");
    for (const env of [{ K: 1 }, 5, ["NOEQUALS"], { "1BAD": "x" }]) {
      const res = await create({ terminal_id: "944", env });
      expect(res.status, JSON.stringify(env)).toBe(400);
      expect(await res.json()).toMatchObject({ statusCode: 400, error: "Bad Request", code: "INVALID_PARAMETERS" });
    }
  });
});
