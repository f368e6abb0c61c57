/**
 * `clusterip-sim hash`: which node gets this flow? The quick lookup, and the
 * contract our checks use. Flags follow iptables' own names.
 */
import { Command, Option } from 'commander';
import { DataError, UsageError } from '../sim/core/errors.ts';
import { existsSync, writeSync } from 'node:fs';
import { openSpool } from './spool.ts';
import { buildSelector } from '../sim/select/build.ts';
import { CLUSTERIP_MODES, NO_BUCKET, UNKNOWN_BUCKET, type Selector, type SelectorSpec } from '../sim/select/selector.ts';
import { parseIptablesRule, parseU32Text } from '../sim/select/iptables-rule.ts';
import { worthANote } from '../sim/select/profile.ts';
import { CURRENT_KERNEL, DEFAULT_CLUSTERIP_KERNEL, specJson, type Fact } from '../sim/core/spec.ts';
import { SCHEMA_VERSION } from '../sim/core/version.ts';
import { readCsvTuples, parseTupleFields, writeParsed } from '../sim/traffic/csv-tuples.ts';
import { createBatch, FAMILY_IPV6, type TupleBatch } from '../sim/traffic/batch.ts';
import { formatIPv4, formatIPv6 } from '../sim/core/addr.ts';

export interface SelectorFlags {
  backend?: string;
  hashmode?: string;
  totalNodes?: string;
  hashInit?: string;
  hashSeed?: string;
  nft?: string;
  rule?: string;
  kernel?: string;
  endian?: string;
}

/** Adds the selector flags shared by `hash` and `simulate`. */
export function addSelectorOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--backend <name>', 'clusterip (iptables CLUSTERIP target), xt_cluster (iptables -m cluster) or nft (nftables jhash/symhash)').choices(['clusterip', 'xt_cluster', 'nft']))
    .addOption(new Option('--hashmode <mode>', 'CLUSTERIP --hashmode').choices([...CLUSTERIP_MODES]))
    .option('--total-nodes <n>', 'number of nodes: CLUSTERIP --total-nodes (0-16), cluster --cluster-total-nodes (1-32)')
    .addOption(new Option('--cluster-total-nodes <n>', 'alias of --total-nodes').hideHelp())
    .option('--hash-init <u32>', 'CLUSTERIP --hash-init (default 0)')
    .option('--hash-seed <u32>', 'xt_cluster --cluster-hash-seed (required by iptables)')
    .addOption(new Option('--cluster-hash-seed <u32>', 'alias of --hash-seed').hideHelp())
    .option('--nft <expr>', "nft hash expression, e.g. 'jhash ip saddr . tcp sport mod 4 seed 0x1 offset 1' or 'symhash mod 2'")
    .option('--rule <iptables-rule>', "an iptables CLUSTERIP rule (with --new) or cluster-match rule, as you would load it")
    .option('--kernel <version>', `kernel the rules run on: picks the jhash and CLUSTERIP era (default ${DEFAULT_CLUSTERIP_KERNEL} for clusterip, ${CURRENT_KERNEL} otherwise)`)
    .addOption(new Option('--endian <order>', 'CPU byte order of the nodes').choices(['little', 'big']).default('little'));
}

/** Turns selector flags into a spec; contradictions are usage errors. */
export function selectorSpecFromFlags(o: SelectorFlags & { clusterTotalNodes?: string; clusterHashSeed?: string }): { spec: SelectorSpec; rule: ReturnType<typeof parseIptablesRule> | null } {
  const endian = (o.endian ?? 'little') as 'little' | 'big';
  const totalNodes = o.totalNodes ?? o.clusterTotalNodes;
  const hashSeed = o.hashSeed ?? o.clusterHashSeed;
  if (o.rule !== undefined) {
    const extra = (['backend', 'hashmode', 'hashInit', 'nft'] as const).filter((k) => o[k] !== undefined);
    if (totalNodes !== undefined) extra.push('totalNodes' as never);
    if (hashSeed !== undefined) extra.push('hashSeed' as never);
    if (extra.length) throw new UsageError(`--rule carries the whole configuration; drop ${extra.map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ')}`);
    const r = parseIptablesRule(o.rule);
    if (r.kind === 'clusterip') {
      return { spec: { backend: 'clusterip', hashmode: r.hashmode, totalNodes: r.totalNodes, hashInit: r.hashInit, kernel: o.kernel ?? DEFAULT_CLUSTERIP_KERNEL, endian }, rule: r };
    }
    return { spec: { backend: 'xt_cluster', totalNodes: r.totalNodes, hashSeed: r.hashSeed, kernel: o.kernel ?? CURRENT_KERNEL, endian }, rule: r };
  }
  const backend = o.backend ?? (o.nft !== undefined ? 'nft' : undefined);
  if (!backend) throw new UsageError('say which backend: --backend clusterip|xt_cluster|nft, --nft EXPR, or --rule RULE');
  const nodes = (): number => {
    if (totalNodes === undefined) throw new UsageError(`--backend ${backend} needs --total-nodes`);
    if (!/^\d+$/.test(totalNodes)) throw new UsageError(`--total-nodes: '${totalNodes}' is not a whole number`);
    return Number(totalNodes);
  };
  switch (backend) {
    case 'clusterip': {
      if (o.nft !== undefined) throw new UsageError('--nft goes with --backend nft, not clusterip');
      if (hashSeed !== undefined) throw new UsageError('--hash-seed is the cluster match\'s option; CLUSTERIP calls it --hash-init');
      if (!o.hashmode) throw new UsageError('--backend clusterip needs --hashmode sourceip|sourceip-sourceport|sourceip-sourceport-destport');
      const hashInit = o.hashInit === undefined ? 0 : parseU32Text(o.hashInit, '--hash-init');
      return { spec: { backend: 'clusterip', hashmode: o.hashmode as SelectorSpec & never, totalNodes: nodes(), hashInit, kernel: o.kernel ?? DEFAULT_CLUSTERIP_KERNEL, endian }, rule: null };
    }
    case 'xt_cluster': {
      if (o.nft !== undefined) throw new UsageError('--nft goes with --backend nft, not xt_cluster');
      if (o.hashmode !== undefined) throw new UsageError('--hashmode is CLUSTERIP\'s; the cluster match always hashes the conntrack\'s original source address');
      if (o.hashInit !== undefined) throw new UsageError('--hash-init is CLUSTERIP\'s option; the cluster match calls it --hash-seed');
      if (hashSeed === undefined) throw new UsageError('--backend xt_cluster needs --hash-seed (iptables: "option --cluster-hash-seed must be specified")');
      return { spec: { backend: 'xt_cluster', totalNodes: nodes(), hashSeed: parseU32Text(hashSeed, '--hash-seed'), kernel: o.kernel ?? CURRENT_KERNEL, endian }, rule: null };
    }
    case 'nft': {
      const extra = (['hashmode', 'hashInit'] as const).filter((k) => o[k] !== undefined);
      if (extra.length || totalNodes !== undefined || hashSeed !== undefined) throw new UsageError('--backend nft takes its modulus, seed and offset from --nft (e.g. --nft "jhash ip saddr mod 4 seed 0x1")');
      if (o.nft === undefined) throw new UsageError("--backend nft needs --nft EXPR, e.g. --nft 'jhash ip saddr mod 4 seed 0x1 offset 1'");
      return { spec: { backend: 'nft', expr: o.nft, kernel: o.kernel ?? CURRENT_KERNEL, endian }, rule: null };
    }
    default:
      throw new UsageError(`--backend '${backend}' is not one of clusterip, xt_cluster, nft`);
  }
}

/** Prints, once, the facts behind an answer that were not measured on a real kernel, and the big-endian basis. */
export function noteFacts(sel: Selector, write: (s: string) => void, sawIPv6 = true): void {
  const relevant = sel.facts.filter((f: Fact) => f.scope !== 'ipv6' || sawIPv6);
  const soft = relevant.filter(worthANote);
  if (!soft.length) return;
  write(`note: ${sel.description}\n`);
  for (const f of soft) write(`note: [${f.evidence}] ${f.topic}: ${f.note}\n`);
}

/** Parses `PROTO SADDR[:SPORT] DADDR[:DPORT]` from the command line. */
function parseCliTuple(args: string[]): string[] {
  if (args.length !== 3) throw new UsageError(`a tuple on the command line is PROTO SADDR[:SPORT] DADDR[:DPORT], e.g. tcp 10.1.2.3:4000 192.0.2.10:80 (got ${args.length} words)`);
  const split = (ep: string): [string, string] => {
    const v6 = /^\[([^\]]+)\](?::(\d*))?$/.exec(ep);
    if (v6) return [v6[1]!, v6[2] ?? ''];
    if ((ep.match(/:/g) ?? []).length > 1) return [ep, ''];
    const i = ep.lastIndexOf(':');
    return i < 0 ? [ep, ''] : [ep.slice(0, i), ep.slice(i + 1)];
  };
  const [sa, sp] = split(args[1]!);
  const [da, dp] = split(args[2]!);
  return [args[0]!, sa, sp, da, dp];
}

function fmtAddr(b: TupleBatch, i: number, which: 's' | 'd'): string {
  if (b.family[i] === FAMILY_IPV6) return formatIPv6(which === 's' ? b.saddr6 : b.daddr6, i << 2);
  return formatIPv4(which === 's' ? b.saddr[i]! : b.daddr[i]!);
}

export function registerHash(program: Command): void {
  const cmd = program
    .command('hash')
    .description(
      'Computes, bit-exactly as the kernel does, the node (CLUSTERIP, xt_cluster: 1..N) or value (nft: offset..offset+N-1) ' +
        'that each tuple lands on. Input: one tuple as arguments, or CSV proto,saddr,sport,daddr,dport (header optional, ' +
        "proto as number or name, '-' for stdin). Output: CSV with a 'node' column (empty where no rule fires).",
    )
    .argument('[tuple...]', 'PROTO SADDR[:SPORT] DADDR[:DPORT], e.g. tcp 10.1.2.3:4000 192.0.2.10:80');
  addSelectorOptions(cmd)
    .option('--input <file>', "CSV tuples to hash ('-' for stdin): columns by header name in any order (proto,saddr,sport,daddr,dport; others ignored, so `tuples` output works), RFC 4180 quoting; no header = that order")
    .option('--json', 'one JSON document: the selector, the facts behind it, and one object per tuple')
    .addHelpText(
      'after',
      `
Examples:
  clusterip-sim hash --backend clusterip --hashmode sourceip-sourceport --total-nodes 5 --hash-init 0x12345678 --input tuples.csv
  clusterip-sim hash --backend xt_cluster --total-nodes 7 --hash-seed 0xdeadbeef tcp 10.1.2.3:4000 192.0.2.10:80
  clusterip-sim hash --nft 'jhash ip saddr . tcp sport mod 7 seed 0x1 offset 0' --input -
  clusterip-sim hash --rule '-d 10.0.0.1 -i eth0 -j CLUSTERIP --new --hashmode sourceip --clustermac 01:00:5E:00:00:20 --total-nodes 2 --local-node 1' tcp 10.1.2.3:4000 10.0.0.1:80
  clusterip-sim hash --backend clusterip --hashmode sourceip-sourceport --total-nodes 4 --kernel 2.6.20 udp 10.0.0.1:53 192.0.2.10:53

Defaults: --kernel ${DEFAULT_CLUSTERIP_KERNEL} for clusterip (CLUSTERIP was removed in 6.3), ${CURRENT_KERNEL} for the others; --endian little.
Answers for little-endian 4.1+ kernels were checked against 130,130 rows recorded from real kernels; other eras and
big-endian CPUs rest on reading the kernel source, and the command says so on stderr.`,
    )
    .action(async (tuple: string[], o: SelectorFlags & { input?: string; json?: boolean }) => {
      if (o.input !== undefined && tuple.length) throw new UsageError('give either --input FILE or one tuple on the command line, not both');
      if (o.input === undefined && !tuple.length) throw new UsageError('nothing to hash: give a tuple (tcp 10.1.2.3:4000 192.0.2.10:80) or --input FILE');
      const { spec, rule } = selectorSpecFromFlags(o);
      const sel = buildSelector(spec);
      if (o.input !== undefined && o.input !== '-' && !existsSync(o.input)) throw new DataError(o.input, 'no such file (--input)');
      const spool = o.json ? openSpool() : null;
      const out = { write: (t: string): void => void (spool ? writeSync(spool.fd, t) : process.stdout.write(t)) };
      const err = (s: string): void => void process.stderr.write(s);
      const localMask = rule ? (rule.kind === 'clusterip' ? 2 ** (rule.localNode - 1) : rule.nodeMask) : 0;
      const invert = rule?.kind === 'xt_cluster' && rule.invert;
      if (rule?.kind === 'clusterip' && rule.localNode > rule.totalNodes) err(`note: --local-node ${rule.localNode} > --total-nodes ${rule.totalNodes}: the kernel loads this rule, but that node never receives anything\n`);

      const accepted = (bucket: number): string => {
        if (!rule) return '';
        if (bucket < 0) return ',0';
        const mine = Math.floor(localMask / 2 ** bucket) % 2 === 1;
        return mine !== invert ? ',1' : ',0';
      };
      let sawIPv6 = false;
      let noNode = 0;
      let rows = 0;
      let first = true;
      const emit = (batch: TupleBatch, res: Int32Array): void => {
        let s = '';
        for (let i = 0; i < batch.count; i++) {
          const bucket = res[i]!;
          if (bucket < 0) noNode++;
          if (batch.family[i] === FAMILY_IPV6) sawIPv6 = true;
          const node = bucket === NO_BUCKET || bucket === UNKNOWN_BUCKET ? '' : String(bucket + sel.offset);
          if (o.json) {
            s += `${first ? '' : ',\n'}    {"proto":${batch.proto[i]},"saddr":"${fmtAddr(batch, i, 's')}","sport":${batch.sport[i]},"daddr":"${fmtAddr(batch, i, 'd')}","dport":${batch.dport[i]},"node":${node === '' ? 'null' : node}${rule ? `,"accepted":${accepted(bucket) === ',1'}` : ''}}`;
            first = false;
          } else {
            s += `${batch.proto[i]},${fmtAddr(batch, i, 's')},${batch.sport[i]},${fmtAddr(batch, i, 'd')},${batch.dport[i]},${node}${accepted(bucket)}\n`;
          }
        }
        rows += batch.count;
        out.write(s);
      };
      if (o.json) {
        out.write(`{\n  "schema_version": ${SCHEMA_VERSION},\n  "selector": ${JSON.stringify({ spec: specJson(spec), description: sel.description, buckets: sel.buckets, offset: sel.offset, predictable: sel.predictable })},\n  "facts": ${JSON.stringify(sel.facts)},\n  "rows": [\n`);
      } else {
        out.write(`proto,saddr,sport,daddr,dport,node${rule ? ',accepted' : ''}\n`);
      }
      try {
      if (o.input !== undefined) {
        let res = new Int32Array(0);
        for await (const { batch } of readCsvTuples(o.input)) {
          if (res.length < batch.count) res = new Int32Array(batch.capacity);
          sel.select(batch, res, 0, batch.count);
          emit(batch, res);
        }
      } else {
        const batch = createBatch(1);
        writeParsed(batch, 0, parseTupleFields(parseCliTuple(tuple), 'command line'));
        batch.count = 1;
        const res = new Int32Array(1);
        sel.select(batch, res);
        emit(batch, res);
      }
      if (o.json) out.write(`\n  ]\n}\n`);
      if (spool) await spool.copyTo(process.stdout);
      } catch (e) {
        // CSV keeps what it printed and says how far it got; JSON prints nothing (see spool.ts).
        if (!spool && e instanceof DataError) throw new DataError(e.where, `${e.what} (the CSV above is complete up to there: ${rows} tuples)`);
        throw e;
      } finally {
        spool?.remove();
      }
      noteFacts(sel, err, sawIPv6);
      if (noNode > 0) err(`note: ${noNode} of ${rows} tuples got no node (${sel.backend === 'nft' ? 'the key\'s protocol or family does not match, so the rule does not fire' : 'IPv6 at an IPv4-only CLUSTERIP target, or no conntrack'})\n`);
      if (!sel.predictable) err('note: these values are a stand-in; the kernel\'s symhash values cannot be predicted\n');
    });
}
