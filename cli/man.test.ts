/** The shipped man page is what the command line gives now (regenerate: npm run man), and package.json installs it. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAN_PATH, manPage } from './man.ts';

describe('man page', () => {
  it('man/clusterip-sim.1 is current with every command\'s --help (npm run man rewrites it)', async () => {
    const page = await manPage();
    expect(readFileSync(MAN_PATH, 'utf8'), 'man/clusterip-sim.1 is stale: run `npm run man`').toBe(page);
  });

  it('has a section per command, with options and examples, and package.json installs it', async () => {
    const page = await manPage();
    for (const c of ['simulate', 'failover', 'replay', 'glue apply', 'glue agent', 'doctor']) expect(page).toContain(`.SS "clusterip-sim ${c}"`);
    expect(page).toMatch(/-i, --live <device>/);
    expect(page).toMatch(/Exit codes: 0 ok/);
    // No line may start a roff request by accident (help text starting with . or ').
    expect(page.split('\n').filter((l) => /^[.'](?!TH |SH |SS |nf$|fi$|B |I |\\")/.test(l))).toEqual([]);
    const pkg = JSON.parse(readFileSync(resolve(import.meta.dirname, '../package.json'), 'utf8')) as { man?: string[] | string };
    expect([pkg.man].flat()).toContain('./man/clusterip-sim.1');
  });
});
