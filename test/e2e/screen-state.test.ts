/**
 * Screen state end to end through the real stack: command history from shell integration (bash,
 * zsh, fish), stored by the TerminalDO and surviving dropped agent links; raw output as text,
 * HTML and download; screenshots; the create options the shell hooks implement; late joiners
 * repainted exactly while a full-screen program runs.
 */
import { createCanvas, loadImage } from "@napi-rs/canvas";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { CommandRecord } from "../../shared/history.ts";
import { TAIL_KEEP_BYTES } from "../../worker/agent/pty-output-log.ts";
import { useStack } from "../support/stack.ts";
import { TermClient } from "../support/term-client.ts";
import { until } from "../support/waiters.ts";

const stack = useStack();
let nextId = 100;

/** Creates a terminal and attaches a client to it. */
async function open(body: Record<string, unknown> = {}, opts: { cols?: number; rows?: number } = {}): Promise<{ id: number; client: TermClient }> {
  const id = nextId++;
  const res = await stack.api("/api/v1/terminal/create", { method: "POST", body: JSON.stringify({ terminal_id: id, ...body }) });
  expect(res.status, await res.clone().text()).toBe(200);
  return { id, client: await attach(id, opts) };
}

async function attach(id: number, opts: { cols?: number; rows?: number } = {}): Promise<TermClient> {
  const c = await TermClient.connect(`${stack.url}/api/v1/terminal/ws?terminal_id=${id}`, { apiKey: stack.apiKey, ...opts });
  stack.track(c);
  return c;
}

/**
 * Runs a command that prints a fresh marker and waits for the marker. Everything the shell
 * reported before it (records included: the agent sends a record before the output that ends
 * it, on the same link) has then reached the TerminalDO.
 */
let syncs = 0;
async function sync(c: TermClient): Promise<void> {
  const tag = `sync${++syncs}`;
  c.input(`echo ${tag}-"done"\r`);
  await c.waitForText(`${tag}-done`);
}

async function history(id: number, path = `/api/v1/terminal/history/${id}`): Promise<CommandRecord[]> {
  const res = await stack.api(path);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as CommandRecord[];
}

describe.each(["bash", "zsh", "fish"] as const)("command history in %s", (shell) => {
  it("records exit codes and the cwd, not markers a program prints, and lists the lines in sessions", async () => {
    const { id, client } = await open({ shell });
    client.input("false\r");
    client.input("true\r");
    client.input("cd /tmp\r");
    client.input("true\r");
    client.input(String.raw`printf '\033]633;E;forged-cmd;0123456789abcdef0123456789abcdef\007\033]633;D;0\007'` + "\r");
    await sync(client);
    const records = (await history(id)).filter((r) => r.status === "done");
    expect(records.map((r) => r.command).slice(0, 4)).toEqual(["false", "true", "cd /tmp", "true"]);
    expect(records[0]).toMatchObject({ id: 1, exit_code: 1, cwd: stack.home, status: "done" });
    expect(records[1]).toMatchObject({ exit_code: 0, cwd: stack.home });
    expect(records[2]).toMatchObject({ exit_code: 0, cwd: stack.home });
    expect(records[3]).toMatchObject({ exit_code: 0, cwd: "/tmp" });
    for (const r of records) {
      expect(Date.parse(r.finished_at!)).toBeGreaterThanOrEqual(Date.parse(r.started_at));
      // The duration is the time between the two stamps (ms), never negative.
      expect(r.duration_ms).toBe(Math.max(0, Date.parse(r.finished_at!) - Date.parse(r.started_at)));
    }
    const all = await history(id);
    expect(all.some((r) => r.command === "forged-cmd")).toBe(false);
    expect(all.filter((r) => r.command.startsWith("printf"))).toHaveLength(1);

    const sessions = (await (await stack.api("/api/v1/terminal/sessions?history_limit=3")).json()) as { id: number; command_history: string[] }[];
    const listed = sessions.find((s) => s.id === id)!;
    expect(listed.command_history).toHaveLength(3);
    expect(listed.command_history.at(-1)).toMatch(/^echo sync\d+-"done"$/);
    const byAlias = (await (await stack.api("/api/v1/terminal/sessions?history_lines=1")).json()) as { id: number; command_history: string[] }[];
    expect(byAlias.find((s) => s.id === id)!.command_history).toEqual([listed.command_history.at(-1)]);
  });
});

describe("the history endpoint", () => {
  it("takes the id from the query too, on both mounts, with the seed's errors", async () => {
    const { id, client } = await open({ shell: "bash" });
    client.input("true\r");
    await sync(client);
    // The marker prints before its command's record ends (the prompt hook ends it), so wait for that too.
    const byQuery = await until("every record done", async () => {
      const records = await history(id, `/api/v1/terminal/history?terminal_id=${id}`);
      return records.every((r) => r.status === "done") ? records : null;
    });
    const scoped = await history(id, `/api/v1/terminals/local/api/v1/terminal/history/${id}`);
    expect(byQuery[0]).toMatchObject({ id: 1, command: "true", exit_code: 0 });
    expect(scoped).toEqual(byQuery);

    const missing = await stack.api("/api/v1/terminal/history");
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ statusCode: 400, error: "Bad Request", code: "MISSING_TERMINAL_ID" });
    const bad = await stack.api("/api/v1/terminal/history/70000");
    expect(await bad.json()).toMatchObject({ statusCode: 400, code: "INVALID_TERMINAL_ID" });
    const unknown = await stack.api("/api/v1/terminal/history/9999");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ statusCode: 404, error: "Not Found", code: "SESSION_NOT_FOUND" });
    expect((await fetch(`${stack.url}/api/v1/terminal/history/${id}`)).status).toBe(401);
  });

  it("keeps history across dropped agent links, including commands that ended while they were down", async () => {
    const { id, client } = await open({ shell: "bash" });
    const flag = join(stack.stateDir, `flag-${id}`);
    client.input("false\r");
    client.input(`until [ -e ${flag} ]; do sleep 0.02; done; (exit 7)\r`);
    await client.waitForText("(exit 7)");
    await client.waitFor(() => client.text().split("\x1b]633;C").length > 2, "the waiting command to start");

    stack.agent.kill("SIGUSR2");
    await client.waitFor(() => client.errors.some((e) => e.code === "AGENT_OFFLINE"), "the agent going offline");
    client.info = null;
    writeFileSync(flag, ""); // the command ends while the links are down (or coming back)
    // Read while the agent is (most likely still) away: served from the TerminalDO's storage.
    const during = await history(id);
    expect(during[0]).toMatchObject({ command: "false", exit_code: 1, status: "done" });

    await client.waitFor(() => client.info?.agent_online === true, "the agent's data link to come back");
    await sync(client);
    const after = await history(id);
    expect(after.map((r) => [r.command, r.exit_code, r.status]).slice(0, 2)).toEqual([
      ["false", 1, "done"],
      [`until [ -e ${flag} ]; do sleep 0.02; done; (exit 7)`, 7, "done"],
    ]);
    expect(new Set(after.map((r) => r.id)).size).toBe(after.length);
    await stack.waitForAgent(); // the control link too, for the tests that follow
  });
});

describe("raw output", () => {
  it("serves text, its last lines, HTML with colours and the raw bytes", async () => {
    const { id, client } = await open({ shell: "bash" });
    client.input("PS1='p> '\r");
    // The quotes keep "raw-three" out of the command line's echo: typed ahead of the shell, the
    // line can be echoed (by the terminal) before the command runs, and "p> " follows soon after
    // from the PS1 line, so waiting for the bare word could return before the output existed.
    client.input(String.raw`printf 'raw-%s\n' one two; printf '\e[31mred-text\e[0m\n'; echo raw-"three"` + "\r");
    await client.waitFor(() => /raw-three\r\n[\s\S]*p> /.test(client.text()), "raw-three and the prompt");

    const text = await stack.api(`/api/v1/terminal/raw?terminal_id=${id}&format=text`);
    expect(text.headers.get("content-type")).toMatch(/^text\/plain/);
    const body = await text.text();
    expect(body).toMatch(/^raw-one$/m);
    expect(body).toMatch(/^raw-two$/m);
    expect(body).toMatch(/^red-text$/m);
    expect(body).not.toContain("\x1b");

    const tail = await (await stack.api(`/api/v1/terminal/raw?terminal_id=${id}&format=text&tail=2`)).text();
    expect(tail).toBe("raw-three\np>");

    const html = await stack.api(`/api/v1/terminal/raw?terminal_id=${id}&format=html`);
    expect(html.headers.get("content-type")).toMatch(/^text\/html/);
    const page = await html.text();
    expect(page).toMatch(/^<!DOCTYPE html>/);
    expect(page).toMatch(/<span[^>]*style="color:#cc0000[^"]*">red-text<\/span>/);

    const download = await stack.api(`/api/v1/terminal/raw?terminal_id=${id}`);
    expect(download.headers.get("content-type")).toBe("application/octet-stream");
    expect(download.headers.get("content-disposition")).toMatch(/^attachment; filename="terminal-\d+\.raw"$/);
    const bytes = Buffer.from(await download.arrayBuffer());
    expect(bytes.includes("raw-one\r\nraw-two\r\n")).toBe(true);
    expect(bytes.includes("\x1b[31mred-text\x1b[0m")).toBe(true);
    const lastTwo = Buffer.from(await (await stack.api(`/api/v1/terminal/raw?terminal_id=${id}&format=download&tail=2`)).arrayBuffer()).toString();
    expect(lastTwo.split("\n")).toHaveLength(2);
    expect(lastTwo).toMatch(/^raw-three\r\n[\s\S]*p> /);

    const scoped = await stack.api(`/api/v1/terminals/local/api/v1/terminal/raw?terminal_id=${id}&format=text&tail=2`);
    expect(await scoped.text()).toBe("raw-three\np>");
  });

  it("keeps only the newest 2 MiB of raw output", async () => {
    const { id, client } = await open({ shell: "bash" });
    client.input("head -c 3000000 /dev/zero | tr '\\0' x; echo; echo big-$((6*7))\r");
    await client.waitForText("big-42", 30_000);
    await sync(client);
    const bytes = Buffer.from(await (await stack.api(`/api/v1/terminal/raw?terminal_id=${id}`)).arrayBuffer());
    expect(bytes.byteLength).toBe(TAIL_KEEP_BYTES);
    expect(bytes.includes("big-42\r\n")).toBe(true);
    expect(bytes.subarray(0, 1000).every((b) => b === 0x78)).toBe(true);
  });

  it("answers an unknown session in plain text, bad parameters in the seed's JSON", async () => {
    const unknown = await stack.api("/api/v1/terminal/raw?terminal_id=9999&format=text");
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(await unknown.text()).toBe("Terminal session not found");
    // No terminal_id means terminal 1, which this stack never created.
    const byDefault = await stack.api("/api/v1/terminal/raw");
    expect(byDefault.status).toBe(404);
    expect(await byDefault.text()).toBe("Terminal session not found");
    const badFormat = await stack.api("/api/v1/terminal/raw?terminal_id=1&format=pdf");
    expect(await badFormat.json()).toMatchObject({ statusCode: 400, code: "INVALID_PARAMETERS" });
    const badId = await stack.api("/api/v1/terminal/raw?terminal_id=abc");
    expect(await badId.json()).toMatchObject({ statusCode: 400, code: "INVALID_TERMINAL_ID" });
    const badTail = await stack.api("/api/v1/terminal/raw?terminal_id=1&tail=-3");
    expect(await badTail.json()).toMatchObject({ statusCode: 400, code: "INVALID_PARAMETERS" });
  });
});

/** Decodes an image and returns a pixel reader. */
async function decode(bytes: Uint8Array): Promise<{ width: number; height: number; at(x: number, y: number): number[] }> {
  const img = await loadImage(Buffer.from(bytes));
  const canvas = createCanvas(img.width, img.height);
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const data = ctx.getImageData(0, 0, img.width, img.height).data;
  return { width: img.width, height: img.height, at: (x, y) => [...data.subarray((y * img.width + x) * 4, (y * img.width + x) * 4 + 4)] };
}

describe("screenshots", () => {
  // DejaVu Sans Mono at 20 px: 12 × 24 pixel cells (see test/worker/screenshot.test.ts).
  const COLS = 40;
  const ROWS = 12;

  it("draws a PNG of the terminal's size with the requested background and saves it", async () => {
    const { id, client } = await open({ shell: "bash", cols: COLS, rows: ROWS }, { cols: COLS, rows: ROWS });
    client.input("echo shot-ready\r");
    await client.waitForText("shot-ready\r\n");
    const res = await stack.api(`/api/v1/terminal/screenshot?terminal_id=${id}&background=blue&foreground=(255,255,0,255)`);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/png");
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const img = await decode(bytes);
    expect([img.width, img.height]).toEqual([COLS * 12, ROWS * 24]);
    expect(img.at(img.width - 3, img.height - 3)).toEqual([0, 0, 255, 255]);
    expect(img.at(2, img.height - 3)).toEqual([0, 0, 255, 255]);
    const path = res.headers.get("x-screenshot-path")!;
    expect(path).toMatch(new RegExp(`/screenshots/${id}/\\d{4}-\\d{2}-\\d{2}_\\d{2}-\\d{2}-\\d{2}(_\\d+)?\\.png$`));
    expect(path.startsWith(join(stack.stateDir, "agent"))).toBe(true);
    expect(existsSync(path)).toBe(true);

    const jpeg = await stack.api(`/api/v1/terminal/screenshot?terminal_id=${id}&format=jpeg&save=false&fontsize=10`);
    expect(jpeg.headers.get("content-type")).toBe("image/jpeg");
    expect(jpeg.headers.get("x-screenshot-path")).toBeNull();
    expect([...new Uint8Array(await jpeg.arrayBuffer()).subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    const gif = await stack.api(`/api/v1/terminals/local/api/v1/terminal/screenshot?terminal_id=${id}&format=gif&save=false`);
    expect(gif.headers.get("content-type")).toBe("image/gif");
    expect(Buffer.from(await gif.arrayBuffer()).subarray(0, 4).toString("latin1")).toBe("GIF8");
  });

  it("refuses bad parameters and unknown sessions with the seed's codes", async () => {
    const missing = await stack.api("/api/v1/terminal/screenshot");
    expect(await missing.json()).toMatchObject({ statusCode: 400, code: "MISSING_TERMINAL_ID" });
    for (const query of ["background=mauve", "foreground=(300,0,0,255)", "fontsize=2", "fontsize=big", "format=bmp", "save=maybe"]) {
      const res = await stack.api(`/api/v1/terminal/screenshot?terminal_id=1&${query}`);
      expect(res.status, query).toBe(400);
      expect(await res.json(), query).toMatchObject({ statusCode: 400, error: "Bad Request", code: "INVALID_PARAMETERS" });
    }
    // The message names every form a colour may take, not only some of them.
    const badColor = (await (await stack.api("/api/v1/terminal/screenshot?terminal_id=1&foreground=purple")).json()) as { message: string };
    for (const form of ["black", "white", "(R,G,B)", "(R,G,B,A)", "#RRGGBB[AA]"]) expect(badColor.message).toContain(form);
    const unknown = await stack.api("/api/v1/terminal/screenshot?terminal_id=9999");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ statusCode: 404, code: "SESSION_NOT_FOUND" });
  });
});

describe("create options and OSC wiring", () => {
  it("runs startup_script, prints the welcome line and debug output", async () => {
    const script = join(stack.stateDir, "startup.sh");
    writeFileSync(script, "STARTUP_VAR=from-startup\necho startup-ran\n");
    const { id, client } = await open({ shell: "bash", startup_script: script, welcome: true, debug: true });
    await client.waitForText("startup-ran");
    await client.waitForText(`Welcome to edgetty: terminal ${id} (bash)`);
    await client.waitForText("[edgetty] ");
    client.input('echo "var=$STARTUP_VAR"\r');
    await client.waitForText("var=from-startup");
  });

  it("sends window titles to clients and the listing", async () => {
    const { id, client } = await open({ shell: "bash" });
    client.input(String.raw`printf '\e]0;%s\a' title-from-osc` + "\r");
    await client.waitFor(() => client.titles.includes("title-from-osc"), "the title");
    const sessions = (await (await stack.api("/api/v1/terminal/sessions")).json()) as { id: number; title?: string }[];
    expect(sessions.find((s) => s.id === id)?.title).toBe("title-from-osc");
  });
});

describe("late joiners while a full-screen program runs", () => {
  it("repaints vi exactly: the joiner's screen matches the first client's and the agent's", async () => {
    const file = join(stack.stateDir, "repaint.txt");
    writeFileSync(file, Array.from({ length: 40 }, (_, i) => `line ${i + 1} of the file`).join("\n") + "\n");
    const { id, client: first } = await open({ shell: "bash", cols: 80, rows: 24 }, { cols: 80, rows: 24 });
    first.input(`vi ${file}\r`);
    await first.waitForScreen("line 23 of the file");
    first.input("10Gwwi<inserted>\x1b");
    await first.waitForScreen("line 10 <inserted>of the file");

    const late = await attach(id, { cols: 80, rows: 24 });
    await late.waitForScreen("line 10 <inserted>of the file");
    const firstScreen = await first.screen();
    expect(await late.screen()).toEqual(firstScreen);
    const a = first.terminal!.buffer.active;
    const b = late.terminal!.buffer.active;
    expect([b.type, b.cursorY, b.cursorX]).toEqual([a.type, a.cursorY, a.cursorX]);
    expect(b.type).toBe("alternate");

    // vim may still redraw (its mode line clears once the ESC timeout passes): compare the agent's
    // render with the first client's screen once no frame arrived in between.
    let agentText = "";
    let shown = "";
    for (let attempt = 0; attempt < 5; attempt++) {
      const frames = first.frameCount;
      agentText = await (await stack.api(`/api/v1/terminal/raw?terminal_id=${id}&format=text`)).text();
      shown = (await first.screen()).join("\n").replace(/\n+$/, "");
      if (agentText === shown && first.frameCount === frames) break;
      await first.waitFor(() => first.frameCount > frames, "vim's next redraw", 2_000).catch(() => undefined);
    }
    expect(agentText).toBe(shown);

    first.input(":q!\r");
  });
});
