/**
 * Synthetic scenarios: deterministic per seed, shares add up exactly (every
 * flow inside one share), time increases within a flow, and the pcap `gen`
 * writes is read back bit-exactly by our reader and accepted by tcpdump and
 * tshark with valid checksums.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBatch, F, type TupleBatch } from './batch.ts';
import { openCapture } from './capture.ts';
import { CLUSTER_IP, openSynthetic, SCENARIOS } from './synthetic.ts';
import { PcapWriter } from './pcap-writer.ts';
import type { PacketInput } from './input.ts';

let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'synth-test-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

const LANES = ['ts', 'wirelen', 'saddr', 'daddr', 'l4a', 'l4b', 'sport', 'dport', 'proto', 'family', 'flags', 'l4flags'] as const;
function rows(src: PacketInput, cap = 1000): string[] {
  const b = createBatch(cap);
  const out: string[] = [];
  while (src.fill(b) > 0) for (let i = 0; i < b.count; i++) out.push(LANES.map((l) => (b[l] as ArrayLike<number>)[i]).join(','));
  return out;
}
/** A flow key independent of direction: client side and server port. */
function flowKey(b: TupleBatch, i: number): string {
  const up = b.daddr[i] === CLUSTER_IP;
  return up ? `${b.proto[i]}|${b.saddr[i]}|${b.sport[i]}|${b.dport[i]}` : `${b.proto[i]}|${b.daddr[i]}|${b.dport[i]}|${b.sport[i]}`;
}

describe('synthetic traffic', () => {
  for (const name of Object.keys(SCENARIOS)) {
    it(`${name}: deterministic, exact packet count, shares are a partition by flow`, () => {
      const whole = rows(openSynthetic(name, { seed: 42, packets: 6000 }));
      expect(whole).toHaveLength(6000);
      expect(rows(openSynthetic(name, { seed: 42, packets: 6000 }), 77)).toEqual(whole);
      expect(rows(openSynthetic(name, { seed: 43, packets: 6000 }))).not.toEqual(whole);
      const count = 3;
      const parts = [0, 1, 2].map((index) => rows(openSynthetic(name, { seed: 42, packets: 6000, share: { index, count } })));
      expect(parts.reduce((s, p) => s + p.length, 0)).toBe(6000);
      expect([...parts.flat()].sort()).toEqual([...whole].sort());
      // no flow in two shares; time increases within a flow
      const owner = new Map<string, number>();
      const last = new Map<string, number>();
      for (let index = 0; index < count; index++) {
        const src = openSynthetic(name, { seed: 42, packets: 6000, share: { index, count } });
        const b = createBatch(500);
        while (src.fill(b) > 0) {
          for (let i = 0; i < b.count; i++) {
            const k = flowKey(b, i);
            if (name !== 'synflood' && name !== 'uniform') {
              expect(owner.get(k) ?? index).toBe(index);
            }
            owner.set(k, index);
            expect(b.ts[i]!).toBeGreaterThanOrEqual(last.get(k) ?? 0);
            last.set(k, b.ts[i]!);
          }
        }
      }
    });
  }

  it('default: TCP connections with handshake, data both ways and FIN; UDP and ICMP too; toward 192.0.2.10', () => {
    const src = openSynthetic('default', { packets: 20000, seed: 1 });
    const b = createBatch(20000);
    src.fill(b);
    const protos = new Map<number, number>();
    let syn = 0, synack = 0, fin = 0, down = 0, toCluster = 0;
    for (let i = 0; i < b.count; i++) {
      protos.set(b.proto[i]!, (protos.get(b.proto[i]!) ?? 0) + 1);
      const f = b.flags[i]!;
      if ((f & (F.SYN | F.ACK)) === F.SYN) syn++;
      if ((f & (F.SYN | F.ACK)) === (F.SYN | F.ACK)) synack++;
      if (f & F.FIN) fin++;
      if (b.saddr[i] === CLUSTER_IP) down++;
      if (b.daddr[i] === CLUSTER_IP || b.saddr[i] === CLUSTER_IP) toCluster++;
    }
    expect(toCluster).toBe(b.count);
    expect(protos.get(6)!).toBeGreaterThan(10000);
    expect(protos.get(17)!).toBeGreaterThan(300);
    expect(protos.get(1)!).toBeGreaterThan(50);
    expect(syn).toBeGreaterThan(100);
    expect(synack).toBeGreaterThan(100);
    expect(fin).toBeGreaterThan(100);
    expect(down).toBeGreaterThan(b.count / 5);
    expect(src.stats.bytes).toBeGreaterThan(b.count * 300);
  });

  it('gen writes a pcap that our reader decodes to the same batches, and tcpdump and tshark accept with valid checksums', () => {
    const f = join(dir, 'd.pcap');
    const w = new PcapWriter(f);
    const s = openSynthetic('default', { packets: 3000, seed: 9 });
    const b = createBatch(1000);
    while (s.fill(b) > 0) w.write(b);
    w.close();
    expect(rows(openCapture(f), 333)).toEqual(rows(openSynthetic('default', { packets: 3000, seed: 9 })));
    const td = execFileSync('tcpdump', ['-nn', '-r', f], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(td.trim().split('\n')).toHaveLength(3000);
    const bad = execFileSync('tshark', ['-n', '-r', f, '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'ip.check_checksum:TRUE',
      '-Y', 'ip.checksum.status == 0 || tcp.checksum.status == 0 || udp.checksum.status == 0 || icmp.checksum.status == 0 || _ws.malformed'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(bad.trim()).toBe('');
    const good = execFileSync('tshark', ['-n', '-r', f, '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-Y', 'tcp.checksum.status == 1 || udp.checksum.status == 1'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(good.trim().split('\n').length).toBeGreaterThan(2500);
  });

  it('unknown scenarios and impossible shares are usage errors', () => {
    expect(() => openSynthetic('nope', {})).toThrow(/unknown scenario 'nope'/);
    expect(() => openSynthetic('default', { share: { index: 3, count: 3 } })).toThrow(/share 3 of 3/);
  });
});
