/**
 * Renders an ApiError in the shape of the API family that was called, so each family's
 * existing clients see the errors they expect.
 */
import { ApiError, STATUS_TEXT } from "../shared/errors.ts";
import { log } from "./log.ts";

export { ApiError };

/** The three public API families plus the agent link. */
export type Family = "terminal" | "open-terminal" | "terminals";

export function errorResponse(family: Family, error: ApiError, headers?: HeadersInit): Response {
  const status = error.status;
  let body: unknown;
  switch (family) {
    case "terminal":
      body = { statusCode: status, error: STATUS_TEXT[status] ?? "Error", message: error.message, code: error.code };
      break;
    case "open-terminal":
      body = { detail: error.message, code: error.code };
      break;
    case "terminals":
      body = { error: error.message, code: error.code };
      break;
  }
  const response = Response.json(body, { status, headers });
  return response;
}

/** Anything thrown becomes an ApiError; unexpected errors are logged and hidden. */
export function toApiError(error: unknown, where: string): ApiError {
  if (error instanceof ApiError) return error;
  log("error", "unexpected_error", `unexpected error in ${where}`, { where, error });
  return new ApiError(500, "INTERNAL_ERROR", "Internal error");
}

/** An RPC answer: DO methods return these instead of throwing, so codes survive the hop. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: { status: number; code: string; message: string } };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail(error: unknown, where: string): Result<never> {
  return { ok: false, error: toApiError(error, where).toBody() };
}

/** Unwraps a Result from a DO, rethrowing its error as an ApiError. */
export function unwrap<T>(result: Result<T>): T {
  if (result.ok) return result.value;
  throw new ApiError(result.error.status, result.error.code, result.error.message);
}
