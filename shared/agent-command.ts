/**
 * The command that runs a newly added server's agent, as `edgetty server add` prints it and the
 * web app's server page shows it: one definition, so both say exactly the same thing.
 */

/**
 * The shell line that starts the agent of server `serverId` against the edge at `edge`, with its
 * agent token in the environment (so it never appears in a process list's arguments). The token
 * is single-quoted; tokens are URL-safe base64 and contain no quote. It names `edgetty-agent`,
 * the command the agent package installs on a host (`npm run build:agent`); a checkout runs the
 * same as `edgetty agent`.
 */
export function agentCommand(edge: string, serverId: string, token: string): string {
  return `EDGETTY_AGENT_TOKEN='${token}' edgetty-agent --edge ${edge} --server ${serverId}`;
}
