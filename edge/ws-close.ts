/**
 * The answer to a peer's Close on a hibernatable WebSocket. RFC 6455 §5.5.1: an endpoint that
 * receives a Close frame sends one back. workerd does this itself for sockets taken with
 * `accept()` (compatibility flag `web_socket_auto_reply_to_close`), never for those a Durable
 * Object took with `ctx.acceptWebSocket()`: without this, the peer's close ends as 1006 after its
 * own timeout (about 10 s for `ws`), and browsers report `wasClean: false`.
 */

/**
 * Sends `ws` the Close that answers the peer's `code` and `reason` (the arguments of
 * `webSocketClose`). Codes a script may not send (1005, 1006, 1015 and the other 1001–2999
 * codes `close()` refuses) are answered with 1000. A socket already closing is left alone.
 */
export function answerClose(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000, reason);
  } catch {
    // Already closed or closing from our side: nothing to answer.
  }
}
