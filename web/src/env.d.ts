// Ambient declarations for what esbuild bundles besides TypeScript.

/** CSS imported for its side effect: esbuild emits it into the entry's CSS bundle. */
declare module "*.css";
