/**
 * Path sanitising for the Open WebUI terminals proxy (`/api/v1/terminals/{server_id}/{path}`),
 * after reference/open-webui-terminals.md §2.3 (Revs B, B′, C), made stricter where the revisions
 * differ: the path is percent-decoded until stable (at most {@link PATH_DECODE_MAX_ROUNDS} rounds;
 * still encoded after that, or a malformed escape, fails closed), then refused if it holds `\`,
 * `?`, `#`, a control character, or any `.` or `..` segment. Repeated `/` collapse, the leading
 * `/` is stripped and a trailing `/` is kept. The decoded path is what goes upstream.
 */

/** Most percent-decoding rounds before a path that still changes is refused. */
export const PATH_DECODE_MAX_ROUNDS = 8;
/** Longest path accepted, in UTF-16 code units after decoding. */
export const PATH_MAX_CHARS = 4096;

// C0 controls, DEL and C1 controls.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** Percent-decodes until stable; null when malformed or still changing after the last round. */
function decodeUntilStable(raw: string): string | null {
  let current = raw;
  for (let round = 0; round < PATH_DECODE_MAX_ROUNDS; round++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return null;
    }
    if (next === current) return current;
    current = next;
  }
  // Eight rounds and still encoded: refuse rather than guess what a ninth would reveal.
  return null;
}

/**
 * The upstream path for `raw` (the part after `/api/v1/terminals/{server_id}/`, still encoded),
 * without a leading `/`; or null when it must be refused with 400 `Invalid path`.
 */
export function sanitizeTerminalPath(raw: string): string | null {
  if (raw.length > PATH_MAX_CHARS * 3) return null;
  const decoded = decodeUntilStable(raw);
  if (decoded === null || decoded.length > PATH_MAX_CHARS) return null;
  if (decoded.includes("\\") || decoded.includes("?") || decoded.includes("#") || CONTROL.test(decoded)) return null;
  const trailingSlash = decoded.endsWith("/");
  const segments = decoded.split("/").filter((s) => s !== "");
  if (segments.length === 0) return null;
  if (segments.some((s) => s === "." || s === "..")) return null;
  return segments.join("/") + (trailingSlash ? "/" : "");
}
