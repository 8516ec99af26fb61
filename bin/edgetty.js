#!/usr/bin/env -S node --max-semi-space-size=1
// The edgetty command. Sources are TypeScript; tsx compiles them on load (no build step).
//
// --max-semi-space-size=1 (MB): the agent streams output through short-lived buffers, and a small
// young generation keeps its memory flat under a flood instead of V8 growing it (see the memory
// figures of `npm run bench`).
import { register } from "tsx/esm/api";

register();
await import("../worker/cli/main.ts");
