/**
 * `clusterip-sim gen SCENARIO --out x.pcap`: writes a synthetic scenario as a
 * pcap that tcpdump, tshark and tcpreplay read (valid checksums).
 */
import type { Command } from 'commander';
import { UsageError } from '../sim/core/errors.ts';
import { Progress } from './progress.ts';
import { createBatch } from '../sim/traffic/batch.ts';
import { openSynthetic, SCENARIOS } from '../sim/traffic/synthetic.ts';
import { PcapWriter } from '../sim/traffic/pcap-writer.ts';

function whole(s: string | undefined, flag: string, dflt: number): number {
  if (s === undefined) return dflt;
  const t = s.trim();
  const v = /^0x[0-9a-f]+$/i.test(t) ? parseInt(t, 16) : Number(t.replace(/_/g, ''));
  if (t === '' || !Number.isInteger(v) || v < 0) throw new UsageError(`${flag}: '${s}' is not a whole number`);
  return v;
}

export function registerGen(program: Command): void {
  program
    .command('gen')
    .description(
      'Generates a seeded, reproducible scenario (the same packets the simulator uses when you name the scenario instead ' +
        'of a capture) and writes it as an Ethernet pcap with valid IP/TCP/UDP/ICMP checksums and zero payload.',
    )
    .argument('<scenario>', `one of ${Object.keys(SCENARIOS).join(', ')}`)
    .requiredOption('-w, --out <file>', 'pcap to write (-w as in tcpdump)')
    .option('--seed <n>', 'PRNG seed (default 1)')
    .option('-c, --packets <n>', 'number of packets (default 100000)')
    .option('--snaplen <n>', 'cut frames to this many bytes (default: full frames)')
    .addHelpText(
      'after',
      `
Scenarios (all toward the cluster IP 192.0.2.10):
${Object.entries(SCENARIOS).map(([k, v]) => `  ${k.padEnd(9)} ${v.description}`).join('\n')}

Examples:
  clusterip-sim gen default --out mix.pcap --packets 1000000
  clusterip-sim gen synflood --out flood.pcap --seed 7 && tcpdump -nn -r flood.pcap | head
  clusterip-sim gen zipf --out zipf.pcap --snaplen 96`,
    )
    .action((scenario: string, o: { out: string; seed?: string; packets?: string; snaplen?: string }) => {
      if (!SCENARIOS[scenario]) throw new UsageError(`unknown scenario '${scenario}' (one of: ${Object.keys(SCENARIOS).join(', ')})`);
      const src = openSynthetic(scenario, { seed: whole(o.seed, '--seed', 1), packets: whole(o.packets, '--packets', 100000) });
      const snap = whole(o.snaplen, '--snaplen', 262144);
      if (snap < 1 || snap > 262144) throw new UsageError(`--snaplen: ${snap} is not in 1..262144`);
      const w = new PcapWriter(o.out, snap);
      const b = createBatch(8192);
      const packets = whole(o.packets, '--packets', 100000);
      const progress = new Progress(process.stderr, packets);
      try {
        while (src.fill(b) > 0) {
          w.write(b);
          progress.update(w.packets);
        }
      } finally {
        progress.done();
        w.close();
      }
      process.stderr.write(`wrote ${w.packets} packets (${src.stats.bytes} bytes on the wire) to ${o.out}\n`);
    });
}
