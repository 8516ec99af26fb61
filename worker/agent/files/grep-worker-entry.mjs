// The grep thread's entry (search.ts starts it): sources are TypeScript, which tsx compiles on
// load in this thread too (a worker does not inherit the main thread's loader).
import { register } from "tsx/esm/api";

register();
await import("./grep-worker.ts");
