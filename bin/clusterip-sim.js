#!/usr/bin/env node
// Runs the compiled command line (dist/cli/, built by `npm ci` or `npm run build`: cli/build.ts)
// when it is current with the sources; otherwise the TypeScript through tsx, so that an edited
// source never runs stale code. CLUSTERIP_SIM_DEBUG=1 says which one ran and why.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../dist/cli/main.mjs', import.meta.url);
let why = null;
if (process.env.CLUSTERIP_SIM_NO_BUNDLE) why = 'CLUSTERIP_SIM_NO_BUNDLE is set';
else if (!existsSync(compiled)) why = `${fileURLToPath(compiled)} is missing (npm run build)`;
else {
  try {
    const { bundleFresh } = await import(new URL('../dist/cli/fresh.mjs', import.meta.url).href);
    if (!bundleFresh(fileURLToPath(compiled))) why = 'sources changed since the last build (npm run build)';
  } catch (e) {
    why = `the build's stamp check failed: ${e instanceof Error ? e.message : String(e)}`;
  }
}
if (why === null) {
  await import(compiled.href);
} else {
  if (process.env.CLUSTERIP_SIM_DEBUG) process.stderr.write(`clusterip-sim: running the TypeScript through tsx: ${why}\n`);
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli/main.ts');
}
