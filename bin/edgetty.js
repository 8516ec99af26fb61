#!/usr/bin/env -S node --max-semi-space-size=1 --single-threaded-gc
// The edgetty command. Sources are TypeScript; tsx compiles them on load (no build step).
//
// The flags are the agent's (worker/cli/agent-node-flags.ts says why; a test keeps them equal).
import { register } from "tsx/esm/api";

register();
await import("../worker/cli/main.ts");
