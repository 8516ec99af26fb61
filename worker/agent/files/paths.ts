/**
 * Paths and errors of the file API as the reference treats them: absolute paths are normalised,
 * relative ones joined to a base (the session's cwd or home); there is no jail in single-user
 * mode. OS errors become the reference's answers: Python's `str(OSError)` text
 * (`[Errno 21] Is a directory: '/tmp/x'`), permission errors as 403.
 */
import { isAbsolute, join, normalize } from "node:path";
import { OtCode, otError } from "../../../shared/open-terminal.ts";
import type { HttpReply } from "../../../shared/open-terminal.ts";

/** A failure with the HTTP answer it stands for. */
export class FileApiError extends Error {
  override name = "FileApiError";
  constructor(readonly reply: HttpReply) {
    super(String((reply.body as { detail?: unknown }).detail ?? "file error"));
  }
}

/** Throws the family's `{"detail"}` answer. */
export function fail(status: number, detail: string): never {
  const code =
    status === 404 ? OtCode.NOT_FOUND
    : status === 403 ? OtCode.FORBIDDEN
    : status === 409 ? OtCode.CONFLICT
    : status === 413 ? OtCode.TOO_LARGE
    : status === 415 ? OtCode.UNSUPPORTED_MEDIA
    : OtCode.BAD_REQUEST;
  throw new FileApiError(otError(status, code, detail));
}

/** `path` made absolute against `base`, normalised (`~` is the user's home). */
export function resolvePath(path: string, base: string, home: string): string {
  const expanded = path === "~" ? home : path.startsWith("~/") ? join(home, path.slice(2)) : path;
  const full = isAbsolute(expanded) ? normalize(expanded) : join(base, expanded);
  return full.length > 1 && full.endsWith("/") ? full.slice(0, -1) : full;
}

/** glibc's errno numbers and texts, so error details read as the reference's Python. */
const ERRNO: Record<string, [number, string]> = {
  EPERM: [1, "Operation not permitted"],
  ENOENT: [2, "No such file or directory"],
  ENXIO: [6, "No such device or address"],
  EACCES: [13, "Permission denied"],
  EEXIST: [17, "File exists"],
  EXDEV: [18, "Invalid cross-device link"],
  ENOTDIR: [20, "Not a directory"],
  EISDIR: [21, "Is a directory"],
  EINVAL: [22, "Invalid argument"],
  EFBIG: [27, "File too large"],
  ENOSPC: [28, "No space left on device"],
  EROFS: [30, "Read-only file system"],
  ENAMETOOLONG: [36, "File name too long"],
  ENOTEMPTY: [39, "Directory not empty"],
  ELOOP: [40, "Too many levels of symbolic links"],
};

/** Python's `str(OSError)` for a Node fs error on `path`. */
export function pyOsError(e: unknown, path: string): string {
  const err = e as NodeJS.ErrnoException;
  const known = err.code ? ERRNO[err.code] : undefined;
  if (known) return `[Errno ${known[0]}] ${known[1]}: '${err.path ?? path}'`;
  return err.message ?? String(e);
}

/** Turns an fs error into the answer: 403 for permission errors, else `status` with the OS text. */
export function osFail(e: unknown, path: string, status = 400): never {
  if (e instanceof FileApiError) throw e;
  const code = (e as NodeJS.ErrnoException).code;
  fail(code === "EACCES" || code === "EPERM" ? 403 : status, pyOsError(e, path));
}
