/**
 * SOCKS5 for SSH sessions. The agent itself speaks SOCKS5 (the `socks` library), so the proxy's
 * credentials stay in the agent's memory: OpenSSH's ProxyCommand is a tiny bridge (a generated
 * script run by this Node) that connects to a Unix socket in the session's private 0700 folder,
 * and the agent pipes that socket to the tunnel it opened through the proxy. Only the agent's
 * account can reach the socket; it accepts one connection and then stops listening.
 */
import { writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { SocksClient } from "socks";
import type { Socks5Params } from "../../../shared/links/control.ts";

/**
 * Longest the proxy may take to open the tunnel, in milliseconds. Shorter than ssh's own
 * ConnectTimeout (ssh.ts SSH_CONNECT_TIMEOUT_S, 10 s, which bounds the banner too): a proxy that
 * never answers must fail the login as SOCKS5_FAILED before ssh gives up on the banner and the
 * SSH server is blamed (SSH_TIMEOUT).
 */
export const SOCKS5_CONNECT_TIMEOUT_MS = 8_000;

/** The bridge ssh runs as its ProxyCommand: stdin/stdout ⇄ the Unix socket named in argv[2]. */
const BRIDGE_SOURCE = `"use strict";
const s = require("node:net").connect(process.argv[2]);
s.on("error", (e) => { process.stderr.write("edgetty: SOCKS5 bridge: " + e.message + "\\n"); process.exit(1); });
s.on("close", () => process.exit(0));
process.stdin.pipe(s);
s.pipe(process.stdout);
`;

export interface Socks5Bridge {
  /** The ProxyCommand for ssh_config (already quoted; ssh prepends `exec`). */
  proxyCommand: string;
  /** Why the tunnel failed, once it has. */
  failure: string | null;
  close(): void;
}

function quote(arg: string): string {
  return `"${arg.replace(/(["\\])/g, "\\$1")}"`;
}

/**
 * Listens on `<dir>/proxy.sock` and writes the bridge script; the first connection gets a tunnel
 * to `target` through `proxy`. `dir` must be private to the agent (mode 0700).
 */
export async function openSocks5Bridge(dir: string, proxy: Socks5Params, target: { host: string; port: number }): Promise<Socks5Bridge> {
  const socketPath = join(dir, "proxy.sock");
  const script = join(dir, "bridge.cjs");
  writeFileSync(script, BRIDGE_SOURCE, { mode: 0o600 });
  const sockets = new Set<Socket>();
  let closed = false;
  const server: Server = createServer((local) => {
    server.close(); // one connection per session
    sockets.add(local);
    local.on("error", () => local.destroy());
    local.pause();
    SocksClient.createConnection({
      proxy: {
        host: proxy.host,
        port: proxy.port,
        type: 5,
        ...(proxy.user !== undefined ? { userId: proxy.user, password: proxy.pass ?? "" } : {}),
      },
      command: "connect",
      destination: { host: target.host, port: target.port },
      timeout: SOCKS5_CONNECT_TIMEOUT_MS,
    }).then(
      ({ socket: remote }) => {
        // The session ended (or ssh hung up) while the proxy was still answering: nothing will
        // ever close this tunnel, so close it now rather than hold it open until the proxy does.
        if (closed || local.destroyed) {
          remote.destroy();
          return;
        }
        sockets.add(remote);
        remote.on("error", () => local.destroy());
        remote.on("close", () => local.destroy());
        local.on("close", () => remote.destroy());
        local.pipe(remote);
        remote.pipe(local);
        local.resume();
      },
      (error: Error) => {
        bridge.failure = `SOCKS5 proxy ${proxy.host}:${proxy.port}: ${error.message}`;
        local.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(socketPath, () => resolve());
  });
  const bridge: Socks5Bridge = {
    proxyCommand: `${quote(process.execPath)} ${quote(script)} ${quote(socketPath)}`,
    failure: null,
    close() {
      closed = true;
      server.close();
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
  };
  return bridge;
}
