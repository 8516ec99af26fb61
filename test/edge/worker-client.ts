/**
 * The Worker under test, called in-process inside workerd, and a fetch helper that sends the
 * admin key the edge project's bindings set (vitest.config.ts).
 */
import { exports } from "cloudflare:workers";

export const KEY = "test-admin-key";
export const BASE = "http://edge.test";
export const worker = (exports as unknown as { default: { fetch(input: string, init?: RequestInit): Promise<Response> } }).default;

/** `fetch(BASE + path)` through the Worker with `Authorization: Bearer <key>` (none for null). */
export function api(path: string, init: RequestInit = {}, key: string | null = KEY): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  return worker.fetch(BASE + path, { ...init, headers });
}
