// Runs a WebAssembly build of a bench/native program (bench/harness/native.ts
// buildWasi) under Node's WASI: node --no-warnings wasi-run.mjs PROGRAM.wasm ARGS...
// Plain JavaScript, not TypeScript through tsx: the bench times this process
// from spawn to exit, as it times the C binary and our command line, so it
// starts as a user's Node program would. The program sees the whole file
// system at / (give it absolute paths); its exit code is this process's.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const [wasm, ...args] = process.argv.slice(2);
if (!wasm) {
  process.stderr.write('usage: node --no-warnings wasi-run.mjs PROGRAM.wasm [ARGS...]\n');
  process.exit(2);
}
const wasi = new WASI({ version: 'preview1', args: [wasm, ...args], env: {}, preopens: { '/': '/' }, returnOnExit: true });
const instance = await WebAssembly.instantiate(await WebAssembly.compile(readFileSync(wasm)), wasi.getImportObject());
process.exitCode = wasi.start(instance);
