/**
 * Sending on the agent's control link from the HostDO's relays (exec, HTTP tunnel, proxied
 * WebSockets): one frame, false when the link is away or closing (the relay then answers its
 * caller itself; `agentGone()` follows).
 */

/** Sends `msg` as a JSON text frame, or bytes as a binary frame, on `ws`. */
export function sendToAgent(ws: WebSocket | null, msg: object | Uint8Array): boolean {
  if (!ws) return false;
  try {
    ws.send(msg instanceof Uint8Array ? msg : JSON.stringify(msg));
    return true;
  } catch {
    return false;
  }
}
