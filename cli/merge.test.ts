/**
 * `simulate --shard I/N --partial OUT` + `merge`: the merged result is the
 * single run's, exactly (timings aside), for 1, 2, 3 and 8 shards over
 * rotated captures (editcap -c) and over byte ranges of one capture, with
 * connections crossing the shard edges; and a partial that does not belong
 * is refused, naming the file.
 *
 * Fragment trains cut by a shard edge: each share carries the fragments its
 * reassembly could not finish to the merge (sim/traffic/frag-carry.ts), and
 * each shard its split-datagram pass (frag-split.ts), so the merge completes
 * the datagrams and counts the warning as one pass does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';
import type { SimulateResult } from '../sim/core/result.ts';
import { readPartial, readPartialHeader } from '../sim/engine/partial-file.ts';
import { buildFragEdges, EDGE_SEL } from '../test/frag-edges.ts';

const dir = mkdtempSync(join(tmpdir(), 'cipsim-merge-'));
const one = join(dir, 'all.pcap');
let rotated: string[] = [];
const SEL = ['--backend', 'clusterip', '--hashmode', 'sourceip-sourceport', '--total-nodes', '4', '--compare', '--backend xt_cluster --hash-seed 0x1', '--flow-timeout', '3'];

/** A result without what differs between any two runs (the time it was made, how long it took). */
function comparable(stdout: string): unknown {
  const j = JSON.parse(stdout) as Partial<SimulateResult>;
  delete j.generated_at;
  delete j.run;
  return j;
}

async function cli(args: string[], code = 0): Promise<string> {
  const r = await runCli(args);
  if (r.code !== code) throw new Error(`${args.join(' ')}: exit ${r.code}, want ${code}\n${r.stderr}`);
  return r.code === 0 ? r.stdout : r.stderr;
}

/** Runs N shards of `inputs` (each with its own worker count) and merges their partials in a shuffled order. */
async function sharded(inputs: string[], N: number, tag: string, sel = SEL): Promise<{ json: string; parts: string[] }> {
  const parts: string[] = [];
  for (let i = 0; i < N; i++) {
    const out = join(dir, `${tag}-${N}-${i}.part`);
    await cli(['simulate', '--pcap', ...inputs, ...sel, '--shard', `${i}/${N}`, '--partial', out, '--workers', String(i % 3)]);
    parts.push(out);
  }
  const order = parts.map((p, i) => ({ p, k: (i * 5 + 3) % parts.length })).sort((a, b) => a.k - b.k).map((x) => x.p);
  return { json: await cli(['merge', ...order, '--json']), parts };
}

beforeAll(async () => {
  // Traffic from our generator (TCP connections with handshakes and FINs, UDP streams, pings over ~8 s;
  // snapped to 96 bytes), with a 3 s flow timeout: connections both end inside shards and straddle every cut.
  await cli(['gen', 'default', '--out', one, '--packets', '20000', '--snaplen', '96']);
  mkdirp(join(dir, 'rot'));
  execFileSync('editcap', ['-F', 'pcap', '-c', '2300', one, join(dir, 'rot', 'part.pcap')]);
  // editcap numbers the files in time order (part_00000_..., part_00001_...).
  rotated = readdirSync(join(dir, 'rot')).sort().map((f) => join(dir, 'rot', f));
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function mkdirp(p: string): void {
  execFileSync('mkdir', ['-p', p]);
}

describe('merge of shards', () => {
  it('the fixture has what the test is about: rotated files, connections open across every edge', async () => {
    expect(rotated.length).toBeGreaterThanOrEqual(8);
    const { parts } = await sharded([one], 8, 'probe');
    for (const p of parts.slice(1)) {
      // Connections a later shard saw start near its first packet (maybe continuations), and ones left open at its end.
      const x = readPartial(p).parts.map((s) => s.exports.v4);
      expect(x.reduce((n, r) => n + r.count, 0), p).toBeGreaterThan(50);
    }
  }, 120_000);

  it('equals the single run with fragment trains cut by shard edges, for 1, 2, 3 and 8 shards of byte ranges and of rotated files', async () => {
    // Trains spread over every edge (test/frag-edges.ts): shares carry what they cannot finish to the merge.
    const { path: frag } = buildFragEdges(join(dir));
    mkdirp(join(dir, 'frot'));
    execFileSync('editcap', ['-F', 'pcap', '-c', '1100', frag, join(dir, 'frot', 'f.pcap')]);
    const frot = readdirSync(join(dir, 'frot')).sort().map((f) => join(dir, 'frot', f));
    expect(frot.length).toBeGreaterThanOrEqual(8);
    for (const [inputs, tag] of [[[frag], 'fbytes'], [frot, 'frot']] as const) {
      const single = comparable(await cli(['simulate', '--pcap', ...inputs, ...EDGE_SEL, '--json', '--workers', '2']));
      expect((single as { warnings?: string[] }).warnings?.some((w) => /would be split/.test(w)), 'the split-datagram warning').toBe(true);
      for (const N of [1, 2, 3, 8]) {
        const { json, parts } = await sharded([...inputs], N, tag, EDGE_SEL);
        // Every shard but a first one begins inside trains: it carries fragments to the merge.
        if (N > 1) for (const p of parts) expect(readPartial(p).parts.reduce((n, s) => n + (s.carry?.count ?? 0), 0), p).toBeGreaterThan(0);
        expect(comparable(json), `${tag}: ${N} shards`).toEqual(single);
      }
    }
  }, 600_000);

  it('equals the single run over rotated captures, for 1, 2, 3 and 8 shards', async () => {
    const single = comparable(await cli(['simulate', '--pcap', ...rotated, ...SEL, '--json', '--workers', '2']));
    for (const N of [1, 2, 3, 8]) expect(comparable((await sharded(rotated, N, 'rot')).json), `${N} shards`).toEqual(single);
  }, 300_000);

  it('equals the single run over byte ranges of one capture, for 1, 2, 3 and 8 shards', async () => {
    const single = comparable(await cli(['simulate', '--pcap', one, ...SEL, '--json', '--workers', '2']));
    for (const N of [1, 2, 3, 8]) expect(comparable((await sharded([one], N, 'bytes')).json), `${N} shards`).toEqual(single);
  }, 300_000);

  it('rotated files are one capture: the same connections as the file they were cut from', async () => {
    const a = JSON.parse(await cli(['simulate', '--pcap', ...rotated, ...SEL, '--json', '--workers', '0'])) as SimulateResult;
    const b = JSON.parse(await cli(['simulate', '--pcap', one, ...SEL, '--json', '--workers', '0'])) as SimulateResult;
    expect(a.configs.map((c) => c.nodes.map((n) => [n.packets, n.flows, n.connections]))).toEqual(b.configs.map((c) => c.nodes.map((n) => [n.packets, n.flows, n.connections])));
  }, 120_000);

  it('equals the single run of a synthetic scenario, for 1, 3 and 8 shards (whole connections dealt to shards)', async () => {
    const syn = ['--synthetic', 'default', '--packets', '30000', '--seed', '7', ...SEL];
    const single = comparable(await cli(['simulate', ...syn, '--json', '--workers', '2']));
    for (const N of [1, 3, 8]) {
      const parts: string[] = [];
      for (let i = 0; i < N; i++) {
        parts.push(join(dir, `syn-${N}-${i}.part`));
        await cli(['simulate', ...syn, '--shard', `${i}/${N}`, '--partial', parts[i]!, '--workers', '0']);
      }
      expect(comparable(await cli(['merge', ...parts.reverse(), '--json'])), `${N} shards`).toEqual(single);
    }
  }, 120_000);

  it('keeps the output options and the gates (exit 3)', async () => {
    const { parts } = await sharded(rotated, 2, 'gate');
    const r = await runCli(['merge', ...parts, '--max-imbalance', '1.0001']);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/gate max-imbalance packets A/);
    expect(r.stdout).toMatch(/node/i);
    const html = join(dir, 'merged.html');
    expect((await runCli(['merge', ...parts, '--report', html])).code).toBe(0);
    expect(readFileSync(html, 'utf8')).toMatch(/<html/i);
  }, 120_000);
});

describe('a partial that does not belong is refused, naming the file', () => {
  let parts: string[] = [];
  beforeAll(async () => {
    parts = (await sharded(rotated, 3, 'check')).parts;
  }, 120_000);

  it('another configuration', async () => {
    const other = join(dir, 'other-config.part');
    await cli(['simulate', '--pcap', ...rotated, ...SEL.map((a) => (a === '0x1' ? '0x2' : a)), '--compare', '--total-nodes 5', '--shard', '1/3', '--partial', other, '--workers', '0']);
    const err = await cli(['merge', parts[0]!, other, parts[2]!], 1);
    expect(err).toContain(`${other}: header job.configs`);
    expect(err).toMatch(/another configuration than/);
    const lenient = join(dir, 'lenient.part');
    await cli(['simulate', '--pcap', ...rotated, ...SEL, '--lenient', '--shard', '2/3', '--partial', lenient, '--workers', '0']);
    expect(await cli(['merge', parts[0]!, parts[1]!, lenient], 1)).toContain(`${lenient}: header job.lenient`);
  }, 60_000);

  it('another shard plan, a missing or a repeated shard', async () => {
    const four = join(dir, 'four.part');
    await cli(['simulate', '--pcap', ...rotated, ...SEL, '--shard', '1/4', '--partial', four, '--workers', '0']);
    expect(await cli(['merge', parts[0]!, four, parts[2]!], 1)).toMatch(new RegExp(`${four}: header plan.count.*another shard plan`));
    const fewer = join(dir, 'fewer.part');
    await cli(['simulate', '--pcap', ...rotated.slice(0, -1), ...SEL, '--shard', '1/3', '--partial', fewer, '--workers', '0']);
    expect(await cli(['merge', parts[0]!, fewer, parts[2]!], 1)).toMatch(/header plan.inputs/);
    expect(await cli(['merge', parts[0]!, parts[2]!], 1)).toMatch(/1 of 3 shards missing: 1\/3/);
    expect(await cli(['merge', parts[0]!, parts[1]!, parts[1]!, parts[2]!], 1)).toMatch(/shard 1\/3 again/);
  }, 60_000);

  it('another tool version, another format, a damaged body, not a partial', async () => {
    const bytes = readFileSync(parts[1]!);
    const hl = bytes.readUInt32LE(12);
    const header = bytes.toString('utf8', 16, 16 + hl);
    const old = join(dir, 'old.part');
    const h2 = Buffer.from(header.replace(/"version":"[^"]*"/, '"version":"0.0.1"'));
    const pre = Buffer.from(bytes.subarray(0, 16));
    pre.writeUInt32LE(h2.length, 12);
    writeFileSync(old, Buffer.concat([pre, h2, bytes.subarray(16 + hl)]));
    expect(() => readPartialHeader(old)).toThrow(/written by clusterip-sim 0\.0\.1/);
    expect(await cli(['merge', parts[0]!, old, parts[2]!], 1)).toContain(`${old}: header tool.version`);
    const fmt = join(dir, 'fmt.part');
    const b2 = Buffer.from(bytes);
    b2.writeUInt32LE(99, 8);
    writeFileSync(fmt, b2);
    expect(await cli(['merge', fmt], 1)).toContain(`${fmt}: byte 8: partial format 99`);
    const bad = join(dir, 'bad.part');
    const b3 = Buffer.from(bytes);
    b3[b3.length - 9] = b3[b3.length - 9]! ^ 0xff;
    writeFileSync(bad, b3);
    expect(await cli(['merge', bad], 1)).toMatch(/does not match its SHA-256/);
    writeFileSync(join(dir, 'cut.part'), bytes.subarray(0, bytes.length - 100));
    expect(await cli(['merge', join(dir, 'cut.part')], 1)).toMatch(/cut short/);
    expect(await cli(['merge', rotated[0]!], 1)).toContain(`${rotated[0]}: byte 0: not a clusterip-sim partial`);
  }, 60_000);

  it('flags that do not fit a shard are refused', async () => {
    expect(await cli(['simulate', '--pcap', ...rotated, ...SEL, '--shard', '1/3'], 2)).toMatch(/--partial OUT/);
    expect(await cli(['simulate', '--pcap', ...rotated, ...SEL, '--shard', '3/3', '--partial', join(dir, 'x.part')], 2)).toMatch(/I must be in 0\.\.2/);
    expect(await cli(['simulate', '--pcap', ...rotated.slice(0, 2), ...SEL, '--shard', '1/3', '--partial', join(dir, 'x.part')], 2)).toMatch(/2 capture files make at most 2 shards/);
    expect(await cli(['simulate', '--pcap', ...rotated, ...SEL, '--shard', '0/3', '--partial', join(dir, 'x.part'), '--json'], 2)).toMatch(/--json belong to `merge`/);
    expect(existsSync(join(dir, 'x.part'))).toBe(false);
    const r = await runCli(['simulate', '--pcap', one, ...SEL, '--shard', '0/2', '--partial', join(dir, 'bytes.part'), '--workers', '2']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/a byte-range shard reads its range on one thread \(--workers 2 not used\)/);
  }, 60_000);

  it('a shard opens only its own files', async () => {
    const out = join(dir, 'away.part');
    const away = [...rotated.slice(0, 6), join(dir, 'on-another-host-1.pcap'), join(dir, 'on-another-host-2.pcap'), join(dir, 'on-another-host-3.pcap')];
    await cli(['simulate', '--pcap', ...away, ...SEL, '--shard', '0/3', '--partial', out, '--workers', '0']);
    expect(readPartialHeader(out).files.map((f) => f.file.path)).toEqual(rotated.slice(0, 3));
    expect(await cli(['simulate', '--pcap', ...away, ...SEL, '--shard', '2/3', '--partial', out, '--workers', '0'], 1)).toMatch(/on-another-host-1\.pcap: no such file \(--pcap; shard 2\/3 reads it\)/);
  }, 60_000);
});
