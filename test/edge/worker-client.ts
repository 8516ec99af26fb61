/**
 * The Worker under test, called in-process inside workerd, and a fetch helper that sends the
 * admin key the edge project's bindings set (vitest.config.ts).
 */
import { exports } from "cloudflare:workers";

export const KEY = "test-admin-key";
export const BASE = "http://edge.test";
export const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default;

/** `fetch(BASE + path)` through the Worker with `Authorization: Bearer <key>` (none for null); a body without a Content-Type is sent as JSON. */
export function api(path: string, init: RequestInit = {}, key: string | null = KEY): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  // The JSON routes take JSON only (415 otherwise); a body without a type is sent as JSON.
  if (init.body !== undefined && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  return worker.fetch(BASE + path, { ...init, headers });
}
