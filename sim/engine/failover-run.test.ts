/**
 * failover and simulate read an input the same way: only packets to the
 * cluster IP meet the rule (the server's replies in a capture do not), and a
 * connection is one whatever direction its packets go. On a capture with
 * replies and no fault, failover's per-node load equals simulate's packets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBatch, F } from '../traffic/batch.ts';
import { writeTupleV4 } from '../traffic/tuple.ts';
import { PcapWriter } from '../traffic/pcap-writer.ts';
import { parseScenario } from '../cluster/scenario.ts';
import { selectorSpecOf } from '../select/from-config.ts';
import { buildSelector } from '../select/build.ts';
import { analyse } from '../analysis/distribution.ts';
import { firstTimestamp, runFailoverParallel } from './failover-run.ts';
import { runSimulation } from './run.ts';
import { directionDependent } from './share.ts';

const CIP = 0xc000020a; // 192.0.2.10
let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'failover-input-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

/** TCP conversations (SYN, SYN-ACK, data both ways, FIN) and UDP request/answer pairs from many clients, replies included. */
function conversations(path: string): { tcp: number; toCluster: number } {
  const b = createBatch(20000);
  let n = 0, t = 1_700_000_000, tcp = 0, toCluster = 0;
  const put = (proto: number, s: number, sp: number, d: number, dp: number, flags: number): void => {
    writeTupleV4(b, n, proto, s, sp, d, dp, (t += 0.001), 100);
    // writeTupleV4 marks TCP as a SYN; these packets carry exactly the flags given.
    b.flags[n] = (b.flags[n]! & ~F.SYN) | flags;
    if (d === CIP) toCluster++;
    n++;
  };
  for (let k = 0; k < 400; k++) {
    const c = 0x0a100000 + k * 7, cp = 30000 + k;
    if (k % 4 !== 3) {
      tcp++;
      put(6, c, cp, CIP, 80, F.SYN);
      put(6, CIP, 80, c, cp, F.SYN | F.ACK);
      put(6, c, cp, CIP, 80, F.ACK);
      for (let j = 0; j < 1 + (k % 5); j++) { put(6, c, cp, CIP, 80, F.ACK); put(6, CIP, 80, c, cp, F.ACK); }
      put(6, c, cp, CIP, 80, F.FIN | F.ACK);
      put(6, CIP, 80, c, cp, F.FIN | F.ACK);
    } else {
      put(17, c, cp, CIP, 53, 0);
      put(17, CIP, 53, c, cp, 0);
    }
  }
  b.count = n;
  const w = new PcapWriter(path);
  w.write(b);
  w.close();
  return { tcp, toCluster };
}

describe('failover reads an input as simulate does', () => {
  for (const cluster of ['{ ip: 192.0.2.10, backend: clusterip, hashmode: sourceip-sourceport, total_nodes: 3 }', '{ ip: 192.0.2.10, backend: xt_cluster, total_nodes: 3, seed: 7 }']) {
    it(`same per-node packets, replies left out, each connection once (${cluster.includes('xt_cluster') ? 'xt_cluster' : 'clusterip'})`, async () => {
      const file = join(dir, `conv-${cluster.length}.pcap`);
      const { tcp, toCluster } = conversations(file);
      const sc = parseScenario(`name: t\ncluster:\n  cluster: ${cluster}\n  nodes:\n    - { name: n1, owns: [1] }\n    - { name: n2, owns: [2] }\n    - { name: n3, owns: [3] }\nconntrack: { state_sync: false, tcp_loose: true }\nevents: []\n`, 't.yaml');
      const spec = selectorSpecOf(sc.config);
      const sel = buildSelector(spec);
      const sim = await runSimulation({ inputs: [{ kind: 'pcap', path: file }], selectors: [spec], buckets: [sel.buckets], clusterIp: CIP, mixed: null, workers: 0 });
      const { configs } = analyse(sim.merged, [sel], { ids: ['A'], dirDep: [directionDependent(sel)] });
      const simPk = configs[0]!.nodes.map((x) => x.packets);
      expect(simPk.reduce((a, x) => a + x, 0)).toBe(toCluster);
      const lastProgress: number[] = [];
      for (const workers of [0, 2]) {
        const seen: number[] = [];
        const fo = await runFailoverParallel(sc, { input: { kind: 'pcap', path: file }, summary: { kind: 'pcap', files: [], skipped: {} }, workers, t0: firstTimestamp({ kind: 'pcap', path: file }), onProgress: (d) => seen.push(d) });
        // Progress never goes back and ends at the packets read once, however many partitions each read the whole capture.
        expect(seen.every((v, i) => i === 0 || v >= seen[i - 1]!)).toBe(true);
        expect(seen.at(-1)!).toBeGreaterThanOrEqual(toCluster);
        lastProgress.push(seen.at(-1)!);
        const foPk = fo.phases.length ? fo.phases.map((p) => p.per_node.map((x) => x.packets)).reduce((a, r) => a.map((v, i) => v + r[i]!)) : [];
        expect(foPk).toEqual(simPk);
        expect(fo.totals.connections).toBe(tcp);
        expect(fo.totals.lost_packets).toBe(0);
      }
      expect(lastProgress[1]).toBe(lastProgress[0]);
    });
  }
});
