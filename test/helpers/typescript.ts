/**
 * Node arguments that run a TypeScript file the way the test files run (ts-register.mjs): for
 * the child processes a test starts from source.
 */
export const RUN_TYPESCRIPT = ['--import', new URL('./ts-register.mjs', import.meta.url).href];
