/**
 * The tool leaves nothing in the temp directory: after a run that succeeds,
 * one that fails on a damaged capture, and one stopped with Ctrl-C (SIGINT)
 * while its spill directory exists. Each run gets a private $TMPDIR, so the
 * check sees only what that run made (other tests and runs share /tmp).
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const BIN = resolve(import.meta.dirname, '../bin/clusterip-sim.js');
const SEL = ['--backend', 'nft', '--nft', 'jhash ip saddr . th sport mod 3 seed 0x1 offset 1'];
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function privateTmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'cipsim-tmpcheck-'));
  dirs.push(d);
  return d;
}

const env = (tmp: string): NodeJS.ProcessEnv => ({ ...process.env, TMPDIR: tmp });
/** What the run left, without tsx's own compile cache (`tsx-<uid>`: there only when the sources are newer than dist/). */
const left = (tmp: string): string[] => readdirSync(tmp).filter((d) => !/^tsx-\d+$/.test(d));

describe('temporary directories of the tool', () => {
  it('are gone after a successful simulate --json (spill and spool used)', () => {
    const tmp = privateTmp();
    const r = spawnSync(process.execPath, [BIN, 'simulate', '--synthetic', 'default', '--packets', '20000', ...SEL, '--json'], { env: env(tmp), encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveProperty('schema_version');
    expect(left(tmp)).toEqual([]);
  });

  it('are gone after a simulate that fails on a damaged capture', () => {
    const tmp = privateTmp();
    const bad = join(privateTmp(), 'bad.pcap');
    // A pcap header promising Ethernet, then a record header longer than the file.
    const h = Buffer.alloc(24 + 16 + 10);
    h.writeUInt32LE(0xa1b2c3d4, 0); h.writeUInt16LE(2, 4); h.writeUInt16LE(4, 6); h.writeUInt32LE(65535, 16); h.writeUInt32LE(1, 20);
    h.writeUInt32LE(1000, 24 + 8); h.writeUInt32LE(1000, 24 + 12);
    writeFileSync(bad, h);
    const r = spawnSync(process.execPath, [BIN, 'simulate', '--pcap', bad, ...SEL, '--json'], { env: env(tmp), encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(left(tmp)).toEqual([]);
  });

  it('are gone after Ctrl-C in the middle of a run, which still ends by SIGINT', async () => {
    const tmp = privateTmp();
    const p = spawn(process.execPath, [BIN, 'simulate', '--synthetic', 'default', '--packets', '50000000', ...SEL, '--json'], { env: env(tmp), stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const ended = new Promise<[number | null, NodeJS.Signals | null]>((r) => p.once('exit', (c, s) => r([c, s])));
    // Waits (bounded: 1200 x 100 ms) until the run's spill directory exists, then interrupts it.
    let seen: string[] = [];
    for (let k = 0; k < 1200 && p.exitCode === null; k++) {
      seen = readdirSync(tmp);
      if (seen.some((d) => d.startsWith('clusterip-sim-sources-'))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen.some((d) => d.startsWith('clusterip-sim-sources-')), `no spill directory appeared; stderr: ${err}`).toBe(true);
    p.kill('SIGINT');
    const [code, signal] = await ended;
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGINT' });
    expect(left(tmp)).toEqual([]);
    expect(existsSync(tmp)).toBe(true);
  });
});
