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

  it('steady: flows to the given server over [0, duration), as steady at the end as at the start; TCP opens with SYN, ends with FIN', () => {
    const server = 0x0a630001;
    const src = openSynthetic('steady', { seed: 3, flows: 3000, duration_s: 30, tcp_share: 0.7, server });
    const b = createBatch(1 << 20);
    const n = src.fill(b);
    expect(src.fill(createBatch(16))).toBe(0);
    const third = [0, 0, 0];
    const tcpFlows = new Map<string, { syn: number; fin: number; n: number }>();
    let tcp = 0;
    for (let i = 0; i < n; i++) {
      expect(b.daddr[i]).toBe(server);
      expect(b.ts[i]!).toBeGreaterThanOrEqual(0);
      expect(b.ts[i]!).toBeLessThan(30);
      third[Math.floor(b.ts[i]! / 10)]!++;
      if (b.proto[i] !== 6) continue;
      tcp++;
      const k = `${b.saddr[i]}|${b.sport[i]}|${b.dport[i]}`;
      const f = tcpFlows.get(k) ?? { syn: 0, fin: 0, n: 0 };
      if (b.flags[i]! & F.SYN) f.syn++;
      if (b.flags[i]! & F.FIN) f.fin++;
      f.n++;
      tcpFlows.set(k, f);
    }
    // ~3000 flows x ~23 packets, of which 30 s of 50 s are inside the span
    expect(n).toBeGreaterThan(20000);
    expect(tcp / n).toBeGreaterThan(0.6);
    expect(tcp / n).toBeLessThan(0.8);
    expect(third[0]! / third[2]!).toBeGreaterThan(0.85);
    expect(third[0]! / third[2]!).toBeLessThan(1.15);
    const flows = [...tcpFlows.values()];
    expect(flows.filter((f) => f.fin >= 1).length / flows.length).toBeGreaterThan(0.95);
    // flows already open at time 0 come without their SYN, the others with it
    const withSyn = flows.filter((f) => f.syn >= 1).length / flows.length;
    expect(withSyn).toBeGreaterThan(0.4);
    expect(withSyn).toBeLessThan(0.9);
  });

  it('mix: the flow count asked for, to three VIPs, mostly TCP with some UDP, ICMP and ESP', () => {
    const src = openSynthetic('mix', { seed: 2, flows: 5000 });
    const b = createBatch(1 << 20);
    const n = src.fill(b);
    const tuples = new Set<string>();
    const protos = new Map<number, Set<string>>();
    const vips = new Set<number>();
    for (let i = 0; i < n; i++) {
      const k = `${b.proto[i]},${b.saddr[i]},${b.sport[i]},${b.daddr[i]},${b.dport[i]}`;
      tuples.add(k);
      if (!protos.has(b.proto[i]!)) protos.set(b.proto[i]!, new Set());
      protos.get(b.proto[i]!)!.add(k);
      vips.add(b.daddr[i]!);
    }
    expect(tuples.size).toBeGreaterThan(4950);
    expect(tuples.size).toBeLessThanOrEqual(5000);
    expect([...vips].sort()).toEqual([0xc6336401, 0xc6336402, 0xc6336403]);
    expect(protos.get(6)!.size / tuples.size).toBeGreaterThan(0.75);
    expect(protos.get(17)!.size / tuples.size).toBeGreaterThan(0.13);
    expect(protos.get(1)!.size).toBeGreaterThan(50);
    expect(protos.get(50)!.size).toBeGreaterThan(20);
    expect(n / tuples.size).toBeGreaterThan(2); // Pareto sizes: a mean of about 3-5 packets
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
    expect(() => openSynthetic('default', { flows: 10 })).toThrow(/flows: scenario 'default' has no flows/);
    expect(() => openSynthetic('mix', { duration_s: 10 })).toThrow(/duration_s: scenario 'mix' has no duration_s/);
  });
});
