/**
 * `npm run bench`: edgetty measured against a PTY read directly in-process, in one run, on this
 * machine. Every figure is printed beside its in-process baseline and the ratio, with the target.
 *
 *   throughput   100 MB of text to one client (MB/s; medians of alternating runs)
 *   echo         keystroke → echo round trips through the edge (p50/p99, ms)
 *   fan-out      the same output to 1/10/100 clients (per-client MB/s)
 *   memory       agent and workerd RSS growth while `yes` runs for a minute, then for
 *                EDGETTY_BENCH_STALL_S with two clients that stopped reading beside the reader
 *   execute      the execute API: a timeout's answer, memory while 50 MB stream (bench/execute.ts)
 *   browser      echo and throughput with a client that offers permessage-deflate as Chromium
 *                does (the edge declines it by default), beside one that offers nothing and
 *                the offering one on a second stack that accepts it (EDGETTY_CLIENT_WS_DEFLATE
 *                on): wire bytes and workerd CPU per MB for each
 *   paint        keystroke-to-paint in a real Chromium page (p50/p99, ms), keys at a typist's pace, and back to back
 *   joins        the join storm (a flood with 20 clients joining and leaving vs none) and the
 *                100 MB-burst repaint check (alternate screen + mouse, then a joiner must be exact)
 *   open-terminal  /execute round trips and 100 MB file transfers (bench/open-terminal-bench.ts)
 *
 * Environment: EDGETTY_BENCH_MB (default 100), EDGETTY_BENCH_FANOUT_MB (10),
 * EDGETTY_BENCH_ECHOES (1000), EDGETTY_BENCH_YES_S (60), EDGETTY_BENCH_STALL_S (20), EDGETTY_BENCH_PAINTS (300),
 * EDGETTY_BENCH_STORM_MB (50), EDGETTY_BENCH_BURST_MB (100). `npm run bench -- --only PART` runs
 * one part: throughput, echo, fanout, memory, execute, browser, paint, joins or open-terminal.
 *
 * The clients are real WebSockets through the local edge. They count with CountingWebSocket,
 * which reads into one reused buffer: everything here shares two cores, and a general client's
 * garbage collection would be measured as edgetty's. The `ws` library is measured too, for
 * comparison.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchExecute } from "./execute.ts";
import { measureBrowserLike, type BrowserFigures } from "./browser-client.ts";
import { keystrokeToPaint } from "./chromium-paint.ts";
import { burstRepaintCheck, floodRate, STORM_CLIENTS } from "./join-storm.ts";
import { freePort, startLocalStack, type LocalStack } from "../worker/cli/local-stack.ts";
import { benchOpenTerminal } from "./open-terminal-bench.ts";
import {
  BenchClient,
  DONE,
  DONE_CMD,
  edgeEcho,
  edgeThroughput,
  endSessions,
  envInt,
  findWorkerd,
  MB,
  median,
  MEMORY_SAMPLE_S,
  memoryUnderYes,
  PACED_MB_PER_S,
  PACED_TOTAL_MB,
  pacedCommand,
  percentile,
  range,
  rawEcho,
  rawThroughput,
  rssMb,
  session,
  textCommand,
  THROUGHPUT_RUNS,
  WS_CLIENT_RUNS,
  type Ctx,
} from "./measure.ts";

// --- report ---------------------------------------------------------------------------------------

function row(label: string, value: string, baseline: string, ratio: string, target: string, ok: boolean | null): void {
  const verdict = ok === null ? "" : ok ? "ok" : "MISS";
  console.log(`${label.padEnd(30)} ${value.padStart(14)} ${baseline.padStart(14)} ${ratio.padStart(8)}   ${target.padEnd(14)} ${verdict}`);
}

/** Throughput runs of the headline browser-like client, each after a raw PTY read. */
const BROWSER_THROUGHPUT_RUNS = 5;

/** A local stack for the bench with its state in `dir` and its shells' HOME `home` (both existing), with `edgeVars` added. */
async function startBenchStack(dir: string, home: string, edgeVars: Record<string, string>): Promise<LocalStack> {
  const agentNodeOptions: Record<string, string> = process.env.BENCH_AGENT_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_AGENT_NODE_OPTIONS } : {};
  return startLocalStack({ port: await freePort(), host: "127.0.0.1", stateDir: dir, quiet: true, log: () => {}, agentEnv: { HOME: home, ...agentNodeOptions }, edgeVars: { EDGETTY_MAX_CLIENTS: "128", ...edgeVars } });
}

export async function runBench(argv: string[]): Promise<number> {
  // `npm run bench -- --only memory` runs one part (see the file comment).
  const onlyAt = argv.indexOf("--only");
  const only = onlyAt >= 0 ? argv[onlyAt + 1] : undefined;
  const parts = ["memory", "throughput", "echo", "fanout", "execute", "browser", "paint", "joins", "open-terminal"];
  if (argv.includes("--help") || argv.includes("-h")) {
    console.log(`edgetty bench [--only ${parts.join("|")}]\n  Measure the local stack (bench/bench.ts says what each part does).`);
    return 0;
  }
  const unknown = argv.filter((_, i) => onlyAt < 0 || (i !== onlyAt && i !== onlyAt + 1));
  if ((onlyAt >= 0 && !parts.includes(only ?? "")) || unknown.length > 0) {
    console.error(`edgetty bench: ${unknown.length > 0 ? `unknown argument ${JSON.stringify(unknown[0])}` : `--only takes one of ${parts.join(", ")}`}`);
    return 2;
  }
  const runs = (part: string) => only === undefined || only === part;
  const totalMb = envInt("EDGETTY_BENCH_MB", 100);
  const fanoutMb = envInt("EDGETTY_BENCH_FANOUT_MB", 10);
  const echoes = envInt("EDGETTY_BENCH_ECHOES", 1000);
  const yesSeconds = envInt("EDGETTY_BENCH_YES_S", 60);
  const stallSeconds = envInt("EDGETTY_BENCH_STALL_S", 20);

  const stateDir = mkdtempSync(join(tmpdir(), "edgetty-bench-"));
  const home = join(stateDir, "home");
  mkdirSync(home);
  console.log("edgetty bench: starting the local stack…");
  const stack = await startBenchStack(stateDir, home, {});
  const ctx: Ctx = { stack, nextId: 100, live: [] };
  let misses = 0;
  const check = (ok: boolean) => {
    if (!ok) misses++;
    return ok;
  };
  try {
    console.log(`\n${"".padEnd(30)} ${"edgetty".padStart(14)} ${"raw PTY".padStart(14)} ${"ratio".padStart(8)}   target`);

    if (runs("memory")) {
      // First, on fresh processes: the growth includes the runtimes warming up.
      const mem = await memoryUnderYes(ctx, yesSeconds, findWorkerd());
      await endSessions(ctx);
      console.log(`memory during ${yesSeconds} s of \`yes\` (${(mem.bytes / MB).toFixed(0)} MB delivered), RSS in MB every ${MEMORY_SAMPLE_S} s:`);
      for (const [name, series] of [["agent", mem.agent], ["workerd", mem.workerd]] as const) {
        const growth = Math.max(...series) - series[0]!;
        row(`${name} growth (MB)`, growth.toFixed(1), "", "", "< 50 MB", check(growth < 50));
        console.log(`${"".padEnd(30)} ${series.map((v) => v.toFixed(0)).join(" ")}`);
      }
      // Then with two clients that stopped reading: what the edge queues for them is bounded.
      const stalled = await memoryUnderYes(ctx, stallSeconds, findWorkerd(), true);
      await endSessions(ctx);
      console.log(`… ${stallSeconds} s more with two clients that stopped reading (${(stalled.bytes / MB).toFixed(0)} MB to the reader):`);
      const growth = Math.max(...stalled.workerd) - stalled.workerd[0]!;
      row("  workerd growth (MB)", growth.toFixed(1), "", "", "< 50 MB", check(growth < 50));
      console.log(`${"".padEnd(30)} ${stalled.workerd.map((v) => v.toFixed(0)).join(" ")}`);
      console.log("");
    }
    if (runs("throughput")) {
      // Alternating, so a slow moment on the machine hurts both alike; medians, because single
      // runs of either vary by a quarter here (where the scheduler puts the PTY's writer matters).
      const command = textCommand(totalMb * MB);
      const rawRates: number[] = [];
      const edgeRates: number[] = [];
      for (let run = 0; run < THROUGHPUT_RUNS; run++) {
        const raw = await rawThroughput(command);
        rawRates.push(raw.bytes / MB / raw.seconds);
        const edge = await edgeThroughput(ctx, command, 1);
        edgeRates.push(edge.bytes[0]! / MB / edge.seconds[0]!);
        await endSessions(ctx);
      }
      const rawRate = median(rawRates);
      const edgeRate = median(edgeRates);
      row(`throughput, ${totalMb} MB (MB/s)`, edgeRate.toFixed(1), rawRate.toFixed(1), (edgeRate / rawRate).toFixed(2), "≥ 0.80", check(edgeRate / rawRate >= 0.8));
      console.log(`${"".padEnd(30)} ${`median of ${THROUGHPUT_RUNS}; runs ${range(edgeRates)} / ${range(rawRates)}`.padStart(52)}`);
      const wsRates: number[] = [];
      for (let run = 0; run < WS_CLIENT_RUNS; run++) {
        const edge = await edgeThroughput(ctx, command, 1, BenchClient.ws);
        wsRates.push(edge.bytes[0]! / MB / edge.seconds[0]!);
        await endSessions(ctx);
      }
      const wsRate = median(wsRates);
      row("  … to a `ws` client", wsRate.toFixed(1), rawRate.toFixed(1), (wsRate / rawRate).toFixed(2), "", null);
    }

    if (runs("echo")) {
      const rawEchoes = await rawEcho(echoes);
      const edgeEchoes = await edgeEcho(ctx, echoes);
      await endSessions(ctx);
      for (const p of [50, 99]) {
        const e = percentile(edgeEchoes, p);
        const r = percentile(rawEchoes, p);
        const limit = p === 50 ? 1 : 5;
        row(`echo p${p} (ms)`, e.toFixed(3), r.toFixed(3), (e / r).toFixed(1), `≤ ${limit} ms`, check(e <= limit));
      }
    }

    if (runs("fanout")) {
      // Two sources: a flood (as fast as the PTY goes: shows the edge's total capacity, which
      // 100 readers in this one process share) and a paced program, where each viewer should
      // keep up with the source as a single viewer does.
      const sources = [
        { label: "flood", command: textCommand(fanoutMb * MB), target: false },
        { label: `paced ${PACED_MB_PER_S} MB/s`, command: pacedCommand(PACED_TOTAL_MB * MB, PACED_MB_PER_S), target: true },
      ];
      for (const source of sources) {
        const raw = await rawThroughput(source.command);
        const rawRate = raw.bytes / MB / raw.seconds;
        let single = 0;
        for (const viewers of [1, 10, 100]) {
          const r = await edgeThroughput(ctx, source.command, viewers);
          const slowest = Math.min(...r.bytes.map((b, i) => b / MB / r.seconds[i]!));
          if (viewers === 1) single = slowest;
          const vsSingle = slowest / single;
          const target = viewers > 1 && source.target;
          row(`fan-out ${source.label}, ${viewers}`, slowest.toFixed(1), rawRate.toFixed(1), (slowest / rawRate).toFixed(2), target ? "≥ 0.80 × 1" : "", target ? check(vsSingle >= 0.8) : null);
          if (viewers > 1) console.log(`${"".padEnd(30)} ${`slowest viewer at ${vsSingle.toFixed(2)} × the single-viewer rate`.padStart(52)}`);
          await endSessions(ctx);
        }
      }
    }

    if (runs("execute")) {
      await benchExecute(stack, (label, value, target, ok) => row(label, value, "", "", target, ok === null ? null : check(ok)));
    }

    if (runs("browser")) {
      // What browsers get: a client offering permessage-deflate exactly as Chromium does (the
      // targets apply to it), on the edge as deployed by default (which declines the offer,
      // EDGETTY_CLIENT_WS_DEFLATE off); beside it the same client offering nothing, and the
      // offering client on a second stack that accepts deflate (the setting on).
      // Throughput alternates with raw PTY reads, medians of BROWSER_THROUGHPUT_RUNS each (single
      // runs of either vary by half on a shared machine), as the throughput part does.
      const raw = async () => {
        const r = await rawThroughput(textCommand(totalMb * MB));
        return r.bytes / MB / r.seconds;
      };
      const opts = { echoes, command: textCommand(totalMb * MB), doneCmd: DONE_CMD, done: DONE, raw };
      const report = (label: string, f: BrowserFigures, targets: boolean) => {
        console.log(`${label} (extension: ${f.extensions || "none"})`);
        for (const p of [50, 99]) {
          const e = percentile(f.echo, p);
          const limit = p === 50 ? 0.5 : 2;
          row(`  echo p${p} (ms)`, e.toFixed(3), "", "", `≤ ${limit} ms`, targets ? check(e <= limit) : null);
        }
        const rawMbPerS = f.rawMbPerS ?? NaN;
        row(`  throughput (MB/s)`, f.mbPerS.toFixed(1), rawMbPerS.toFixed(1), (f.mbPerS / rawMbPerS).toFixed(2), "≥ 0.90", targets ? check(f.mbPerS / rawMbPerS >= 0.9) : null);
        if (f.runs.length > 1) {
          const ratios = f.runs.map((r) => r.mbPerS / (r.rawMbPerS ?? NaN));
          console.log(`${"".padEnd(30)} ${`median of ${f.runs.length}; runs ${range(f.runs.map((r) => r.mbPerS))} / ${range(f.runs.map((r) => r.rawMbPerS ?? NaN))}, ratios ${range(ratios, 2)}`.padStart(52)}`);
        }
        row(`  wire bytes per output byte`, f.wireRatio.toFixed(3), "", "", "", null);
        row(`  workerd CPU (ms per MB)`, f.workerdCpuMsPerMb.toFixed(1), "", "", "", null);
      };
      const workerdPids = findWorkerd();
      for (const deflate of [true, false]) {
        const f = await measureBrowserLike(() => session(ctx), stack.apiKey, deflate, { ...opts, workerdPids, runs: deflate ? BROWSER_THROUGHPUT_RUNS : 1 });
        await endSessions(ctx);
        report(deflate ? "browser-like, offers deflate as Chromium" : "browser-like, offers no extension", f, deflate);
      }
      const deflateHome = join(stateDir, "deflate", "home");
      mkdirSync(deflateHome, { recursive: true });
      const deflating = await startBenchStack(join(stateDir, "deflate"), deflateHome, { EDGETTY_CLIENT_WS_DEFLATE: "on" });
      try {
        const theirs = findWorkerd().filter((pid) => !workerdPids.includes(pid));
        const dctx: Ctx = { stack: deflating, nextId: 100, live: [] };
        const f = await measureBrowserLike(() => session(dctx), deflating.apiKey, true, { ...opts, workerdPids: theirs });
        await endSessions(dctx);
        report("browser-like, offers deflate, EDGETTY_CLIENT_WS_DEFLATE=on", f, false);
      } finally {
        await deflating.stop();
      }
    }

    if (runs("paint")) {
      const paints = envInt("EDGETTY_BENCH_PAINTS", 300);
      // The headline: keys at a typist's pace; beside it, keys back to back (bench/chromium-paint.ts).
      for (const pacing of ["typing", "back-to-back"] as const) {
        const url = await session(ctx);
        const id = Number(new URL(url).searchParams.get("terminal_id"));
        const samples = await keystrokeToPaint(stack.url, stack.apiKey, id, paints, pacing);
        await endSessions(ctx);
        if (!samples) {
          console.log("keystroke-to-paint: skipped (no /usr/bin/chromium)");
          break;
        }
        const headline = pacing === "typing";
        for (const p of [50, 99]) {
          const v = percentile(samples.painted, p);
          const limit = p === 50 ? 17 : 35;
          const label = headline ? `Chromium key→paint p${p} (ms)` : `  … keys back to back, p${p}`;
          row(label, v.toFixed(1), "", "", headline ? `≤ ${limit} ms` : "", headline ? check(v <= limit) : null);
        }
        const drawn = percentile(samples.drawn, 50);
        const pace = headline ? "typed 60–240 ms apart" : "each 0–17 ms after the last paint";
        const note = `${paints} keys ${pace}; drawn at p50 ${drawn.toFixed(1)} ms, frame done at ${percentile(samples.painted, 50).toFixed(1)}`;
        console.log(`${"".padEnd(30)} ${note.padStart(52)}`);
      }
    }

    if (runs("joins")) {
      const stormMb = envInt("EDGETTY_BENCH_STORM_MB", 50);
      const command = textCommand(stormMb * MB);
      const alone: number[] = [];
      const storm: number[] = [];
      let joins = 0;
      let joinerMb = 0;
      const repaintMs: number[] = [];
      for (let run = 0; run < 3; run++) {
        alone.push((await floodRate(await session(ctx), stack.apiKey, command, DONE_CMD, DONE, 0)).mbPerS);
        await endSessions(ctx);
        const s = await floodRate(await session(ctx), stack.apiKey, command, DONE_CMD, DONE, STORM_CLIENTS);
        storm.push(s.mbPerS);
        joins += s.joins;
        joinerMb += s.joinerMb;
        repaintMs.push(...s.repaintMs);
        await endSessions(ctx);
      }
      const a = median(alone);
      const b = median(storm);
      row(`join storm, ${STORM_CLIENTS} clients (MB/s)`, b.toFixed(1), a.toFixed(1), (b / a).toFixed(2), "≥ 0.80 × alone", check(b / a >= 0.8));
      console.log(`${"".padEnd(30)} ${`medians of 3; ${joins} joins completed; runs ${range(storm)} / ${range(alone)}`.padStart(52)}`);
      // What the storm cost beside the flood: the joiners' own share of it, and how long a join waited.
      repaintMs.sort((x, y) => x - y);
      console.log(`${"".padEnd(30)} ${`joiners received ${((joinerMb / (3 * stormMb)) || 0).toFixed(1)} × the flood; join→repaint p50 ${repaintMs.length ? percentile(repaintMs, 50).toFixed(0) : "-"} ms`.padStart(52)}`);
      const burstMb = envInt("EDGETTY_BENCH_BURST_MB", 100);
      const burst = await burstRepaintCheck(await session(ctx), stack.apiKey, burstMb, 80, 24);
      await endSessions(ctx);
      row(`repaint after a ${burstMb} MB burst`, burst.exact ? "exact" : "DIFFERS", "", "", "exact", check(burst.exact));
      console.log(`${"".padEnd(30)} ${`the joiner's repaint arrived in ${burst.repaintMs.toFixed(0)} ms`.padStart(52)}`);
    }

    if (runs("open-terminal")) {
      await benchOpenTerminal({ stack, home, echoes: Math.min(echoes, 300), fileMb: totalMb, runs: 3, stateDir, rssMb, row, check });
    }

    console.log(misses === 0 ? "\nall targets met" : `\n${misses} target(s) missed`);
  } finally {
    await stack.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
  return 0;
}
