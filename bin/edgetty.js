#!/usr/bin/env node
// The edgetty command. Sources are TypeScript; tsx compiles them on load (no build step).
import { register } from "tsx/esm/api";

register();
await import("../worker/cli.ts");
