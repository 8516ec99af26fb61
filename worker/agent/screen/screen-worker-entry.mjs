// The screen thread's entry (screen-thread.ts starts it): sources are TypeScript, which tsx
// compiles on load in this thread too (a worker does not inherit the main thread's loader).
import { register } from "tsx/esm/api";

register();
await import("./screen-worker.ts");
