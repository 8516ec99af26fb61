/**
 * One error type per API family. Each knows its family's response shape, so a family's router
 * renders whatever is thrown in the shape its existing clients expect, without looking at the
 * path. Shared code (validation, Durable Objects) throws the plain ApiError; a family's router
 * turns it into its own type (`FamilyErrorType.from`). An error of another family's type keeps
 * its own shape: an unknown server under `/api/v1/terminals/{server}/…` is a TerminalsError
 * whichever family's route it was addressed to.
 */
import { ApiError, STATUS_TEXT } from "../shared/errors.ts";
import { log } from "./log.ts";

export { ApiError };

/** An ApiError that renders itself in one API family's shape. */
export abstract class FamilyError extends ApiError {
  /** The JSON body of this error in its family's shape. */
  abstract body(): Record<string, unknown>;

  response(headers?: HeadersInit): Response {
    return Response.json(this.body(), { status: this.status, headers });
  }
}

/** The constructor side of a family's error type. */
export interface FamilyErrorType {
  new (status: number, code: string, message: string): FamilyError;
  /** What a caller without a valid credential is told (401). */
  readonly unauthorizedMessage: string;
}

/** The family's own error for anything thrown: an ApiError keeps its status, code and message. */
export function asFamilyError(type: FamilyErrorType, error: unknown, where: string): FamilyError {
  if (error instanceof FamilyError) return error;
  const api = toApiError(error, where);
  return new type(api.status, api.code, api.message);
}

/** Terminal session API (seed 002), and the admin/auth routes: `{statusCode, error, message, code}`. */
export class SessionApiError extends FamilyError {
  static readonly unauthorizedMessage = "Missing or invalid credentials: send Authorization: Bearer <API key or token>";
  override name = "SessionApiError";
  body(): Record<string, unknown> {
    return { statusCode: this.status, error: STATUS_TEXT[this.status] ?? "Error", message: this.message, code: this.code };
  }
}

/** Open Terminal API (seed 004, FastAPI's shape): `{detail, code}`. */
export class OpenTerminalError extends FamilyError {
  static readonly unauthorizedMessage = "Invalid API key";
  override name = "OpenTerminalError";
  body(): Record<string, unknown> {
    return { detail: this.message, code: this.code };
  }
}

/** Open WebUI terminals API (seed 000): `{error, code}`. */
export class TerminalsError extends FamilyError {
  static readonly unauthorizedMessage = "Missing or invalid credentials: send Authorization: Bearer <API key or token>";
  override name = "TerminalsError";
  body(): Record<string, unknown> {
    return { error: this.message, code: this.code };
  }
}

/** The agents' links (`/agent/v1/*`): `{detail, code}`, the shape agents have always read. */
export class AgentLinkError extends FamilyError {
  static readonly unauthorizedMessage = "Invalid agent token";
  override name = "AgentLinkError";
  body(): Record<string, unknown> {
    return { detail: this.message, code: this.code };
  }
}

/** The families by name, for code outside a router (Durable Objects answering HTTP). */
export type Family = "terminal" | "open-terminal" | "terminals" | "agent";

const FAMILY_TYPES: Record<Family, FamilyErrorType> = {
  terminal: SessionApiError,
  "open-terminal": OpenTerminalError,
  terminals: TerminalsError,
  agent: AgentLinkError,
};

/** Renders `error` in `family`'s shape (for Durable Objects, which answer outside the routers). */
export function errorResponse(family: Family, error: ApiError, headers?: HeadersInit): Response {
  return asFamilyError(FAMILY_TYPES[family], error, family).response(headers);
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
