/**
 * NDJSON: the lines of a streamed body, as they arrive. A line split across chunks is joined;
 * blank lines are skipped. Parsing is the caller's, so each can answer a bad line its own way.
 */

/** Thrown when a line grows past the caller's bound before its newline arrives. */
export class LineTooLongError extends Error {
  override name = "LineTooLongError";
}

/**
 * Each non-blank line of `body`, without its newline, as soon as it is complete. A line longer
 * than `maxLineChars` throws LineTooLongError instead of growing without bound.
 */
export async function* ndjsonLines(body: AsyncIterable<Uint8Array>, maxLineChars = Infinity): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of body) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf("\n")) !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line.trim() !== "") yield line;
    }
    if (pending.length > maxLineChars) throw new LineTooLongError("stream line too long");
  }
}
