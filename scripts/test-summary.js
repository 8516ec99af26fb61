#!/usr/bin/env node
// Prints vitest's JSON results as one plain closing line: "N passed, N failed, N skipped".
import { readFileSync } from "node:fs";

const results = JSON.parse(readFileSync(process.argv[2] ?? "test-artifacts/results.json", "utf8"));
const passed = results.numPassedTests ?? 0;
const failed = results.numFailedTests ?? 0;
const skipped = (results.numPendingTests ?? 0) + (results.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
