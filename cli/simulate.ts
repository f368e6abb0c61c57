/**
 * `clusterip-sim simulate`: how will this traffic spread over the nodes, and
 * what changes between configurations? The main job.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, type TempDir } from '../sim/core/temp-dir.ts';
import type { IngestStats } from '../sim/traffic/input.ts';
import { Option, type Command } from 'commander';
import { DataError, GateError, UsageError } from '../sim/core/errors.ts';
import { workerCount } from './workers.ts';
import { addSelectorOptions, selectorSpecFromFlags, type SelectorFlags } from './hash.ts';
import { splitArgs } from '../sim/select/iptables-rule.ts';
import { buildSelector } from '../sim/select/build.ts';
import type { Selector, SelectorSpec } from '../sim/select/selector.ts';
import type { ClusterConfig } from '../sim/core/cluster-config.ts';
import { parseClusterIp, type ClusterIp } from '../sim/engine/cluster-filter.ts';
import { runSimulation, runShares, defaultWorkers } from '../sim/engine/run.ts';
import type { MergedRun } from '../sim/engine/merge.ts';
import { parseShard, planRun, type ShardSpec } from '../sim/engine/shard-plan.ts';
import type { MergeJob } from '../sim/engine/partial-file.ts';
import { directionDependent } from '../sim/engine/share.ts';
import { canSplitWithoutConntrack, countSplitDatagrams, splitPass } from '../sim/engine/frag-split.ts';
import { hashesConntrackOriginal, parseNftHash } from '../sim/select/nft-expr.ts';
import type { InputSpec } from '../sim/engine/task.ts';
import { SCENARIOS } from '../sim/traffic/synthetic.ts';
import { untimedNote } from '../sim/traffic/input.ts';
import { analyse, migration, type AnalysisOptions } from '../sim/analysis/distribution.ts';
import { simulateHeadline } from '../sim/analysis/verdict.ts';
import { DEFAULT_FLOW_TIMEOUT } from '../sim/engine/conn-table.ts';
import type { ConfigResult, Gate, InputFile, Metric, SimulateResult } from '../sim/core/result.ts';
import { SCHEMA_VERSION, TOOL } from '../sim/core/version.ts';
import { estimatePackets, Progress } from './progress.ts';
import { formatSimulate } from './simulate-format.ts';
import { grouped } from '../reports/format.ts';

/** The built-in scenario when no input is given. */
export const DEFAULT_SCENARIO = { name: 'default', packets: 200_000, seed: 1, clusterIp: '192.0.2.10' };

/** What addInputOptions declares, as commander hands it over. */
export interface InputFlags {
  pcap?: string[];
  synthetic?: string;
  csv?: string;
  packets?: string;
  seed?: string;
}

interface SimulateFlags extends SelectorFlags, InputFlags {
  live?: string;
  duration?: string;
  filter?: string;
  config?: string;
  compare?: string[];
  mixed?: string;
  clusterIp?: string;
  workers?: string;
  flowTimeout?: string;
  json?: boolean;
  report?: string;
  png?: string;
  maxImbalance?: string;
  gateMetric?: string;
  minPValue?: string;
  maxMigration?: string;
  lenient?: boolean;
  /** false with --no-conntrack. */
  conntrack?: boolean;
  tcpLoose?: string;
  /** false with --no-top-sources. */
  topSources?: boolean;
  hash?: boolean;
  shard?: string;
  partial?: string;
}

/**
 * Everything besides the traffic that shapes a simulate result: what a
 * shard's partial carries (partial-file.ts `job`), so `merge` builds the
 * result a single run would. Plain JSON.
 */
export interface SimulateJob extends MergeJob {
  kind: SimulateResult['input']['kind'];
  synthetic?: SimulateResult['input']['synthetic'];
  /** Each configuration: its id (A, B, ...), selector spec, and node names from its cluster config. */
  configs: { id: string; spec: SelectorSpec; names?: string[] }[];
  clusterIp: ClusterIp | null;
  mixed: number[] | null;
  flowTimeout: number;
  topSources: boolean;
  /** --lenient (captures): skips malformed records instead of stopping; every shard must read alike. */
  lenient?: boolean;
  /** --no-conntrack (captures, nft keys without `ct`): nothing defragments; every shard must read alike. */
  noConntrack?: boolean;
  /** --tcp-loose (nf_conntrack_tcp_loose of the nodes); absent: 1, the kernel's default. Every shard must judge alike. */
  tcpLoose?: boolean;
}

/** The gate flags, shared by `simulate` and `merge`. */
export interface GateFlags {
  maxImbalance?: string;
  gateMetric?: string;
  minPValue?: string;
  maxMigration?: string;
}

interface Candidate {
  id: string;
  spec: SelectorSpec;
  config?: ClusterConfig;
}

const ids = (i: number): string => String.fromCharCode(65 + (i % 26)) + (i >= 26 ? String(Math.floor(i / 26)) : '');

function namesFor(sel: Selector, cfg?: ClusterConfig): string[] | undefined {
  if (!cfg) return undefined;
  const names = new Array<string>(sel.buckets).fill('');
  for (const n of cfg.nodes) for (const k of n.owns) if (k >= 1 && k <= sel.buckets) names[k - 1] = n.name;
  return names;
}

/**
 * A cluster YAML as a candidate, with what `glue apply` would object to
 * (formatted; '' if nothing). The config modules load only now: they bring
 * zod (about a hundred modules, 0.08 s of a run's start on the 2-core bench
 * machine), which a run given selector flags does not need.
 */
async function loadCandidate(path: string): Promise<{ cand: Candidate; problems: string }> {
  const [{ loadConfig, formatProblems }, { selectorSpecOf }] = await Promise.all([import('../sim/core/cluster-config.ts'), import('../sim/select/from-config.ts')]);
  const l = loadConfig(path);
  return { cand: { id: '', spec: selectorSpecOf(l.config), config: l.config }, problems: l.problems.length ? formatProblems(l) : '' };
}

/** A --compare value: a cluster YAML file, or selector flags as one string. */
async function parseCompare(text: string, base: SelectorFlags): Promise<Candidate> {
  if (/\.ya?ml$/i.test(text.trim()) || existsSync(text.trim())) return (await loadCandidate(text.trim())).cand;
  const words = splitArgs(text);
  const o: Record<string, string> = {};
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (!w.startsWith('--')) throw new UsageError(`--compare '${text}': expected flags like --backend xt_cluster --total-nodes 4 --hash-seed 0x1, got '${w}'`);
    const key = w.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    o[key] = words[++i] ?? '';
  }
  // Unspecified flags inherit from the main configuration: all of them for the same backend, the node
  // count and byte order for another backend (its own seed, mode and kernel default apply).
  const sameBackend = !o.backend || o.backend === base.backend;
  const merged: SelectorFlags = sameBackend ? { ...base, ...o } : { totalNodes: base.totalNodes, endian: base.endian, ...o };
  if (o.rule) { delete merged.backend; delete merged.hashmode; delete merged.totalNodes; delete merged.hashInit; delete merged.hashSeed; delete merged.nft; }
  if (o.nft) { delete merged.totalNodes; delete merged.hashInit; delete merged.hashSeed; delete merged.hashmode; merged.backend = 'nft'; }
  return { id: '', spec: selectorSpecFromFlags(merged).spec };
}

/**
 * The SHA-256 of a file, read in 1 MiB chunks while the workers run. Not the
 * stream's default 64 KiB: hashing the 870 MB bench capture took 1.14-1.23 s
 * in 64 KiB chunks against 0.63-0.71 s in 1 MiB ones (2026-12-07, quiet; the
 * hash alone is ~0.58 s there). Beside a worker on a capture of a million
 * packets or more, the hash is what the run waits for: `simulate` of the 1M
 * capture took 1.42-1.58 s with 64 KiB chunks and 1.14-1.18 s with these; of
 * the 5M one 5.6-8.8 s and 4.0-5.3 s.
 */
async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

function num(v: string | undefined, flag: string, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < lo || x > hi) throw new UsageError(`${flag}: '${v}' must be a number in ${lo}..${hi}`);
  return x;
}

/** The inputs simulate reads, and recommend reads the same way: captures, synthetic traffic, CSV. */
export function addInputOptions(cmd: Command): Command {
  return cmd
    .option('-r, --pcap <file...>', 'pcap or pcapng captures (.gz ok), several = one capture in the order given (rotated files); -r as in tcpdump')
    .option('--synthetic <scenario>', `synthetic traffic: ${Object.keys(SCENARIOS).join(', ')}`)
    .option('--csv <file>', 'CSV tuples, columns by header name in any order: proto,saddr,sport,daddr,dport, optional ts,wirelen, others ignored (`tuples` output works); no header = that order')
    .option('--packets <n>', 'packets of synthetic traffic', String(DEFAULT_SCENARIO.packets))
    .option('--seed <n>', 'seed of synthetic traffic', String(DEFAULT_SCENARIO.seed));
}

export function registerSimulate(program: Command): void {
  const cmd = program
    .command('simulate')
    .description(
      'Runs captures or synthetic traffic through one or more cluster configurations exactly as the kernel would, and reports ' +
        'per node packets, bytes, flows and connections, how uneven the spread is against what randomness alone gives, the ' +
        'heaviest sources per node, and what share of flows moves between configurations. With no input it runs a built-in scenario. ' +
        'Per node, packets is what the node\'s own netfilter counter for its cluster rule shows (conntrack defragments first, so ' +
        'one per datagram; with --no-conntrack each fragment is a packet); frames are the capture records behind them (each fragment is a frame); ' +
        'bytes are those frames\' wire bytes.',
    );
  addInputOptions(cmd)
    .option('-i, --live <device>', "capture live from an interface (needs root and the optional 'cap' package: `clusterip-sim doctor`), then simulate what came; -i as in tcpdump")
    .option('--duration <seconds>', 'with --live: capture this long (default: until Ctrl-C)')
    .option('--filter <bpf>', "with --live: a BPF filter, e.g. 'tcp port 443'")
    .option('--config <cluster.yaml>', 'cluster config (the one kernel-glue applies); replaces the selector flags');
  addSelectorOptions(cmd)
    .option('--compare <spec>', "another configuration over the same traffic (repeatable): a cluster YAML, or flags in quotes, e.g. --compare '--backend xt_cluster --hash-seed 0x1' --compare '--total-nodes 5'", (v: string, prev: string[] = []) => [...prev, v])
    .option('--mixed <ids>', 'a mixed cluster: which configuration each node runs, e.g. A,A,B,A (node 3 runs B); reports packets no node or several nodes accept')
    .option('--cluster-ip <ip>', 'only packets to this address are hashed (default: the config\'s ip; all packets if none)')
    .option('--workers <n>', 'worker threads (0 = in-process; default: chosen from the input\'s size, in-process under 500,000 packets, else one per CPU, but one for a capture on two cores or fewer unless --no-conntrack: a second would cost more than it gives)')
    .option('--flow-timeout <s>', 'a connection (both directions of a 5-tuple) ends after this many seconds without a packet; ' +
      'the next packet of that 5-tuple opens a new one. Bounds memory on long captures (the table holds only what was active ' +
      'within the timeout). The kernel keeps idle UDP 30-120 s and idle established TCP 5 days', String(DEFAULT_FLOW_TIMEOUT))
    .option('--no-top-sources', 'do not count the heaviest sources per node (exact counts keep one counter per distinct source address; ' +
      'past 2^18 per worker they spill to sorted files under TMPDIR, so memory stays flat but disk is used: about 48 bytes a source)')
    .option('--lenient', 'skip malformed capture records (counted) instead of stopping')
    .option('--no-conntrack', 'the nodes run no conntrack (nft keys without `ct` only): nothing defragments, each fragment is hashed as it ' +
      'came (a non-first fragment\'s "ports" are its payload\'s first bytes, as the kernel reads them) and counted as a packet')
    .addOption(new Option('--tcp-loose <0|1>', 'the nodes\' nf_conntrack_tcp_loose: 1 (the kernel\'s default) lets a TCP ACK without a ' +
      'conntrack entry open one (mid-stream pickup); 0 makes it INVALID, so rules that need conntrack (CLUSTERIP, xt_cluster, ct keys) drop it').choices(['0', '1']))
    .option('--no-hash', 'do not compute the SHA-256 of input files for the report header (saves a pass over huge captures)')
    .option('--shard <I/N>', 'run only shard I of N (I from 0) of the inputs, for a run split across machines: a block of the ' +
      'capture files (given in time order, the same list on every machine), or the I-th byte range of a single capture; needs --partial')
    .option('--partial <out>', 'write this shard\'s partial result to OUT (- for standard output) instead of the analysis; `clusterip-sim merge` joins them');
  addOutputOptions(cmd)
    .addHelpText(
      'after',
      `
Examples:
  clusterip-sim simulate                                   built-in scenario, 4-node CLUSTERIP vs xt_cluster
  clusterip-sim simulate --pcap edge.pcapng --config cluster.yaml --max-imbalance 1.2
  clusterip-sim simulate --synthetic zipf --backend clusterip --hashmode sourceip --total-nodes 4 \\
      --compare '--hashmode sourceip-sourceport' --compare '--backend xt_cluster --hash-seed 0x1' --json
  clusterip-sim simulate --pcap a.pcap --backend xt_cluster --total-nodes 4 --hash-seed 0 --compare '--total-nodes 5'
  clusterip-sim simulate --pcap day/*.pcap --config cluster.yaml --shard 3/8 --partial p3.part   (then: merge p*.part)

Gates exit with 3 so a deployment pipeline can stop on them.`,
    )
    .action(async (o: SimulateFlags) => {
      // A live capture is recorded first (as `tuples` CSV in a private directory), then simulated like a file.
      const live = o.live !== undefined ? await recordLive(o) : null;
      try {
        await simulate(o, live);
      } finally {
        live?.dir.remove();
      }
    });
}

/** What `simulate --live` recorded: the CSV of the capture and the directory it lives in. */
interface LiveRecording { dir: TempDir; csv: string; device: string; stats: IngestStats }

/**
 * Records `--live DEVICE` for `--duration` seconds (or until Ctrl-C) through the
 * live source `tuples --live` uses (the optional `cap` package, loaded only now).
 */
async function recordLive(o: SimulateFlags): Promise<LiveRecording> {
  const other = [o.pcap?.length ? '--pcap' : null, o.synthetic ? '--synthetic' : null, o.csv ? '--csv' : null].filter(Boolean);
  if (other.length) throw new UsageError(`give one kind of input (got --live and ${other.join(' and ')})`);
  if (o.shard || o.partial) throw new UsageError('--shard and --partial split a capture file across machines; record the live traffic to a file first (tcpdump -w) and shard that');
  if (o.conntrack === false) throw new UsageError('--no-conntrack needs --pcap: the live source resolves fragments as they arrive');
  const duration = o.duration === undefined ? undefined : num(o.duration, '--duration', 0.001, 1e9);
  const dir = makeTempDir('clusterip-sim-live-');
  try {
    const csv = join(dir.path, 'live.csv');
    const fd = openSync(csv, 'w', 0o600);
    let stats: IngestStats, fragments: number;
    try {
      const { captureLive } = await import('./tuples.ts');
      let open = false;
      ({ stats, fragments } = await captureLive({ device: o.live!, filter: o.filter, duration }, (t) => {
        // The first write (the CSV header) comes once libpcap has the interface open.
        if (!open) process.stderr.write(`simulate: capturing on ${o.live}${duration !== undefined ? ` for ${duration} s` : ''} (Ctrl-C ends the capture and simulates what came)\n`);
        open = true;
        writeSync(fd, t);
      }));
    } finally {
      closeSync(fd);
    }
    // The recording has a row per fragment (with its datagram's ports), and a CSV row is one packet:
    // the nodes' counters would show one per datagram (conntrack defragments first). Said, not hidden.
    if (fragments > 0) process.stderr.write(`warning: ${grouped(fragments)} of the captured packets were IP fragments: simulate --live counts each fragment as a packet (a node's counter counts one per datagram); for per-datagram counts capture to a file (tcpdump -w) and run simulate --pcap on it\n`);
    return { dir, csv, device: o.live!, stats };
  } catch (e) {
    dir.remove();
    throw e;
  }
}

async function simulate(o: SimulateFlags, live: LiveRecording | null): Promise<void> {
  const err = (s: string): void => void process.stderr.write(s);
  // Input.
  const inputs: InputSpec[] = [];
  const files: InputFile[] = [];
  // Input hashes are computed while the workers run (the main thread is idle then).
  const hashing: Promise<void>[] = [];
  const hashInto = (f: InputFile): void => {
    if (o.hash !== false && !o.shard && !o.partial) hashing.push(sha256(f.path).then((h) => void (f.sha256 = h)));
  };
  let kind: SimulateResult['input']['kind'] = 'synthetic';
  let synthetic: SimulateResult['input']['synthetic'];
  const packets = num(o.packets, '--packets', 1, 1e12)!;
  const seed = num(o.seed, '--seed', 0, 0xffffffff)!;
  if (!live && (o.duration !== undefined || o.filter !== undefined)) throw new UsageError('--duration and --filter go with --live');
  const given = [o.pcap?.length ? 'pcap' : null, o.synthetic ? 'synthetic' : null, o.csv ? 'csv' : null, live ? 'live' : null].filter(Boolean);
  if (given.length > 1) throw new UsageError(`give one kind of input (got ${given.join(' and ')})`);
  let builtIn = false;
  const noConntrack = o.conntrack === false;
  // Only captures carry fragments; elsewhere the flag would change nothing.
  if (noConntrack && o.tcpLoose !== undefined) throw new UsageError('--tcp-loose is a conntrack setting: --no-conntrack models nodes without conntrack');
  if ((o.csv || live) && o.tcpLoose !== undefined) throw new UsageError('--tcp-loose: CSV tuples (and --live recordings, which are CSV) carry no TCP flags, so conntrack validity is not modelled for them');
  const tcpLoose = o.tcpLoose === undefined ? undefined : o.tcpLoose === '1';
  if (noConntrack && !o.pcap?.length) throw new UsageError('--no-conntrack changes how fragments are read: it needs --pcap (CSV tuples and synthetic traffic have no fragments)');
  if (o.pcap?.length) {
    kind = 'pcap';
    for (const p of o.pcap) {
      inputs.push({ kind: 'pcap', path: p, lenient: !!o.lenient, ...(noConntrack ? { noDefrag: true } : {}) });
      // A shard opens only its own files (the others may live on other machines).
      if (o.shard) { files.push({ path: p, bytes: 0, sha256: '' }); continue; }
      if (!existsSync(p)) throw new DataError(p, 'no such file (--pcap)');
      const f: InputFile = { path: p, bytes: statSync(p).size, sha256: '' };
      files.push(f);
      hashInto(f);
    }
  } else if (live) {
    kind = 'live';
    // The recording is this run's own private file: reported as the device, not as a path that is gone after the run.
    inputs.push({ kind: 'csv', path: live.csv });
    files.push({ path: `live:${live.device}`, bytes: statSync(live.csv).size, sha256: '' });
  } else if (o.csv) {
    kind = 'csv';
    if (!existsSync(o.csv)) throw new DataError(o.csv, 'no such file (--csv)');
    inputs.push({ kind: 'csv', path: o.csv });
    const f: InputFile = { path: o.csv, bytes: statSync(o.csv).size, sha256: '' };
    files.push(f);
    hashInto(f);
  } else {
    builtIn = !o.synthetic;
    const name = o.synthetic ?? DEFAULT_SCENARIO.name;
    inputs.push({ kind: 'synthetic', name, seed, packets });
    synthetic = { scenario: name, seed, params: { packets } };
  }
  // Configurations.
  const cands: Candidate[] = [];
  let clusterIpText = o.clusterIp;
  // Nothing ignored silently: selector flags take effect only with a backend; with --config they would be ignored.
  const loose = looseSelectorFlags(o);
  if (loose.length && o.config) throw new UsageError(`--config carries the whole configuration; drop ${loose.join(', ')} (or give them in --compare '...')`);
  if (loose.length && !(o.backend || o.nft || o.rule)) throw new UsageError(`${loose.join(', ')} without a backend would be ignored: add --backend clusterip|xt_cluster (or --nft EXPR, --rule RULE)`);
  if (o.config) {
    const { cand, problems } = await loadCandidate(o.config);
    if (problems) err(`warning: ${o.config} would not pass \`glue apply\`:\n${problems}\n`);
    cands.push(cand);
    clusterIpText ??= cand.config!.cluster.ip;
  } else if (o.backend || o.nft || o.rule) {
    cands.push({ id: '', spec: selectorSpecFromFlags(o).spec });
  } else {
    // Built-in comparison: what a CLUSTERIP cluster does today, and what moving to its successor changes.
    cands.push({ id: '', spec: { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 4, hashInit: 0, kernel: '6.1', endian: 'little' } });
    if (!o.compare?.length) cands.push({ id: '', spec: { backend: 'xt_cluster', totalNodes: 4, hashSeed: 0, kernel: '6.18', endian: 'little' } });
  }
  for (const c of o.compare ?? []) cands.push(await parseCompare(c, cands[0]?.config ? {} : o));
  cands.forEach((c, i) => (c.id = ids(i)));
  if (noConntrack) for (const c of cands) refuseWithoutConntrack(c.spec, c.id);
  const selectors = cands.map((c) => buildSelector(c.spec));
  for (const s of selectors) {
    if (s.buckets > 1 << 20) throw new UsageError(`${s.description}: ${s.buckets} buckets is more than simulate keeps per-bucket counters for (${1 << 20})`);
  }
  if (builtIn && !o.clusterIp) clusterIpText = DEFAULT_SCENARIO.clusterIp;
  if (!clusterIpText && kind === 'synthetic') clusterIpText = DEFAULT_SCENARIO.clusterIp;
  let clusterIp: ClusterIp | null = null;
  if (clusterIpText) {
    clusterIp = parseClusterIp(clusterIpText);
    if (clusterIp === null) throw new UsageError(`--cluster-ip: '${clusterIpText}' is not an IPv4 or IPv6 address`);
    if (kind === 'synthetic') refuseSyntheticToV6(clusterIp, clusterIpText);
  }
  let mixed: number[] | null = null;
  if (o.mixed) {
    const parts = o.mixed.split(',').map((x) => x.trim().toUpperCase());
    mixed = parts.map((p) => {
      const i = cands.findIndex((c) => c.id === p);
      if (i < 0) throw new UsageError(`--mixed: '${p}' names no configuration (have ${cands.map((c) => c.id).join(', ')})`);
      return i;
    });
    const n = selectors[mixed[0]!]!.buckets;
    if (mixed.length !== n || mixed.some((i) => selectors[i]!.buckets !== n)) throw new UsageError(`--mixed: give one configuration per node (${n}), all with ${n} nodes`);
  }
  // Not given: the engine chooses from the input's size (and this says so below).
  const workers = o.workers === undefined ? undefined : workerCount(o.workers, defaultWorkers, err);
  const flowTimeout = num(o.flowTimeout, '--flow-timeout', 0.001, 1e9)!;
  if (builtIn) err(`simulate: no input given, running the built-in scenario '${DEFAULT_SCENARIO.name}' (${grouped(packets)} packets, seed ${seed}) to ${clusterIpText}\n`);
  const job: SimulateJob = {
    kind, ...(synthetic ? { synthetic } : {}),
    configs: cands.map((c, i) => ({ id: c.id, spec: c.spec, ...(c.config ? { names: namesFor(selectors[i]!, c.config) } : {}) })),
    clusterIp, mixed, flowTimeout, topSources: o.topSources !== false, ...(kind === 'pcap' ? { lenient: !!o.lenient } : {}),
    ...(noConntrack ? { noConntrack: true } : {}),
    ...(tcpLoose !== undefined ? { tcpLoose } : {}),
  };
  const runOpts = { inputs, selectors: selectors.map((s) => s.spec), buckets: selectors.map((s) => s.buckets), clusterIp, mixed, workers, flowTimeout, topSources: job.topSources, tcpLoose: tcpLoose ?? true };
  if (o.shard || o.partial) return writeShard(o, job, runOpts, files);
  // A capture's total is estimated from its size (marked ~), so the bar, percentage and ETA show for it too.
  const estimate = kind === 'pcap' && process.stderr.isTTY ? estimatePackets(files.map((f) => f.path)) : 0;
  const progress = new Progress(process.stderr, kind === 'synthetic' ? packets : estimate, kind !== 'synthetic');
  const run = await runSimulation({ ...runOpts, mainIdle: hashing.length === 0, onProgress: (done, rss) => progress.update(done, rss) });
  progress.done();
  if (run.workersChosen) {
    const w = run.workersChosen;
    err(`simulate: ${w.workers === 0 ? 'ran in-process (no worker threads)' : `${w.workers} worker thread${w.workers === 1 ? '' : 's'}`}, chosen from the input's size (about ${grouped(Number(w.packets.toPrecision(2)))} packets)${w.why ? ` on ${defaultWorkers()} cores: ${w.why}` : ''}; --workers N to choose\n`);
  }
  await Promise.all(hashing);
  const result = simulateResult(job, run.merged, files, o, { workers: run.workers, elapsed_s: run.elapsedS, shares_s: run.sharesS, packets_per_s: run.elapsedS > 0 ? run.merged.ingest.packets / run.elapsedS : 0, peak_rss_bytes: run.peakRss });
  addSplitWarnings(result, job, run.merged, (which) => countSplitDatagrams(files.map((f) => f.path), which.map((c) => c.spec), job.clusterIp, job.lenient ?? false));
  await emitSimulate(result, o);
}

/** The output options of a simulate result (terminal, --json, --report/--png) and its gates: `simulate` and `merge` share them. */
export function addOutputOptions(cmd: Command): Command {
  return cmd
    .option('--json', 'print the whole result as one JSON document')
    .option('--report <out.html>', 'write a self-contained HTML report (charts, tables, what ran)')
    .option('--png <dir>', 'also render each chart as a PNG into DIR (headless Chromium)')
    .option('--max-imbalance <x>', 'exit 3 if max/mean load of any configuration exceeds X (see --gate-metric)')
    .addOption(new Option('--gate-metric <m>', 'metric for --max-imbalance').choices(['packets', 'bytes', 'flows', 'connections']).default('packets'))
    .option('--min-p-value <p>', 'exit 3 if the chi-square test (flows) says the spread is less uniform than p')
    .option('--max-migration <share>', 'exit 3 if more than this share (0-1) of flows changes node in any comparison');
}

/**
 * `--no-conntrack` models a namespace without conntrack; a rule that needs
 * conntrack never matches there (CLUSTERIP drops "no conntrack!", xt_cluster
 * and `ct` keys match nothing: kernel-semantics §4.2, §5.3), so such a
 * configuration is refused rather than simulated.
 */
/**
 * The built-in traffic generators make IPv4 packets only (sim/traffic/synthetic.ts): with an IPv6
 * cluster address none would reach the cluster, so a run would count nothing. Refused, not run.
 */
export function refuseSyntheticToV6(clusterIp: ClusterIp, text: string): void {
  if (typeof clusterIp !== 'number') throw new UsageError(`cluster address ${text} is IPv6, and the built-in traffic is IPv4 only: give --pcap (or --csv) with IPv6 traffic to it`);
}

function refuseWithoutConntrack(spec: SelectorSpec, id: string): void {
  const which = id ? `configuration ${id}: ` : '';
  if (spec.backend !== 'nft') throw new UsageError(`--no-conntrack: ${which}${spec.backend} needs conntrack (it matches no packet without it); --no-conntrack applies to nft expressions without ct keys`);
  if (hashesConntrackOriginal(parseNftHash(spec.expr))) throw new UsageError(`--no-conntrack: ${which}'${spec.expr}' reads ct keys, which need conntrack; --no-conntrack applies to nft expressions without ct keys`);
}

/**
 * Conntrack in use (the default) defragments before the cluster rule; without
 * it a key with ports hashes each fragment on its own (frag-split.ts). When the
 * capture has fragments, says per configuration how many datagrams would be
 * split across nodes that way: a deployment mistake (a node set up without
 * conntrack) that breaks them.
 */
export function addSplitWarnings(result: SimulateResult, job: SimulateJob, m: MergedRun, count: (which: SimulateJob['configs']) => number[]): void {
  const which = splitConfigs(job);
  if (!which.length || m.ingest.fragments === 0) return;
  const warnings = [...(result.warnings ?? []), ...splitWarnings(job, count(which))];
  if (warnings.length) result.warnings = warnings;
}

function splitWarnings(job: SimulateJob, counts: number[]): string[] {
  const out: string[] = [];
  splitConfigs(job).forEach((c, k) => {
    const n = counts[k]!;
    if (n > 0) out.push(`${c.id ? `configuration ${c.id}: ` : ''}${grouped(n)} fragmented datagram${n === 1 ? '' : 's'} would be split across nodes if the nodes ran without conntrack (nothing defragments then, and '${c.spec.backend === 'nft' ? c.spec.expr : ''}' reads ports from every fragment): keep conntrack in use on the nodes, or hash addresses only; --no-conntrack shows that case`);
  });
  return out;
}

/** The configurations whose datagrams `--no-conntrack` could split (frag-split.ts): the split count is made for these, in this order. */
export function splitConfigs(job: SimulateJob): SimulateJob['configs'] {
  return job.kind === 'pcap' && !job.noConntrack ? job.configs.filter((c) => canSplitWithoutConntrack(c.spec)) : [];
}

/** The result of a job over its merged run (a single run's, or a merge of shards'). */
export function simulateResult(job: SimulateJob, m: MergedRun, files: InputFile[], o: GateFlags, run: SimulateResult['run']): SimulateResult {
  const selectors = job.configs.map((c) => buildSelector(c.spec));
  const dirDep = selectors.map(directionDependent);
  const aopts: AnalysisOptions = { ids: job.configs.map((c) => c.id), names: job.configs.map((c) => c.names), dirDep };
  const { configs, durationS } = analyse(m, selectors, aopts);
  const migrations = job.configs.slice(1).map((_, j) => migration(m, selectors, j + 1, aopts));
  const skipped = { ...m.ingest.skipped };
  if (m.notToCluster) skipped['not to the cluster ip'] = m.notToCluster;
  const warnings: string[] = [];
  if (m.ct && m.ct.assumed > 0) {
    warnings.push(`conntrack: ${grouped(m.ct.assumed)} TCP connection${m.ct.assumed === 1 ? '' : 's'} went on after the SYN without the answer in the capture (one direction only?): the model assumed the server's SYN|ACK, as the nodes' conntrack would have seen it`);
  }
  if (m.ct && m.ct.icmpErrors > 0) {
    warnings.push(`conntrack: ${grouped(m.ct.icmpErrors)} ICMP error${m.ct.icmpErrors === 1 ? '' : 's'} counted as INVALID (no node): the kernel passes an error whose inner header matches a tracked connection as RELATED; the model does not read inner headers (source reading, kernel-semantics §4.2)`);
  }
  if (job.clusterIp === null && job.kind !== 'synthetic') {
    // Both directions of every connection are hashed: the server's replies (source = the cluster IP) become traffic
    // of their own, and the cluster IP a node's "heaviest source" (seen at 90 % of one node's packets).
    warnings.push('no --cluster-ip (and no --config with one): every packet is hashed, the servers\' replies too, as if they came to the cluster; give --cluster-ip to count only packets to the cluster address, as its nodes see them');
  }
  const untimed = untimedNote(m.ingest.untimed);
  if (untimed) warnings.push(untimed);
  return {
    kind: 'simulate',
    schema_version: SCHEMA_VERSION,
    tool: TOOL,
    generated_at: new Date().toISOString(),
    input: { kind: job.kind, files, ...(job.synthetic ? { synthetic: job.synthetic } : {}), packets: m.ingest.packets, bytes: m.ingest.bytes, duration_s: durationS, skipped, ...(job.noConntrack ? { no_conntrack: true as const } : {}) },
    headline: simulateHeadline(configs, migrations),
    configs,
    migrations,
    ...(m.mixed && job.mixed ? { mixed: mixedResult(m.mixed, m.flows.mixed ?? { none: 0, several: 0 }, job.mixed, job.configs) } : {}),
    gates: gates(o, configs, migrations.map((x) => x.flows_moved_share)),
    ...(warnings.length ? { warnings } : {}),
    run,
  };
}

/** Prints the result (terminal or --json), writes --report/--png, and throws a GateError (exit 3) for failed gates. */
export async function emitSimulate(result: SimulateResult, o: GateFlags & { json?: boolean; report?: string; png?: string }): Promise<void> {
  for (const w of result.warnings ?? []) process.stderr.write(`warning: ${w}\n`);
  if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else process.stdout.write(formatSimulate(result));
  if (o.report || o.png) {
    const html = o.report ?? 'clusterip-sim-report.html';
    // The report's modules (templates, chart code) load only when a report is asked for.
    const { writeReport } = await import('../reports/write.ts');
    const w = await writeReport(result, html, o.png);
    process.stderr.write(`report: ${w.html}${w.pngs.length ? ` and ${w.pngs.length} PNG charts in ${o.png}` : ''}\n`);
  }
  const failed = result.gates.filter((g) => !g.passed);
  if (failed.length) throw new GateError(failed.map((g) => `gate ${g.name}: ${g.value.toFixed(4)} vs threshold ${g.threshold}`).join('; '));
}

/**
 * `--shard I/N --partial OUT`: runs this shard's shares and writes their
 * partials (partial-file.ts) instead of an analysis, with the files this
 * shard reports hashed and sized.
 */
async function writeShard(o: SimulateFlags, job: SimulateJob, runOpts: Parameters<typeof runSimulation>[0], files: InputFile[]): Promise<void> {
  if (!o.partial) throw new UsageError('--shard: give --partial OUT too (one shard\'s analysis alone is not the run\'s; `merge` the partials)');
  const given = (['json', 'report', 'png', 'maxImbalance', 'minPValue', 'maxMigration'] as const).filter((k) => o[k] !== undefined && o[k] !== false);
  if (given.length) throw new UsageError(`--partial: ${given.map((k) => '--' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())).join(', ')} belong to \`merge\` (a partial is not a result)`);
  const shard: ShardSpec = o.shard ? parseShard(o.shard) : { index: 0, count: 1 };
  const plan = planRun(runOpts.inputs, runOpts.workers ?? defaultWorkers(), shard);
  const reported = plan.reports.map((input) => {
    const f = files[input]!;
    if (!existsSync(f.path)) throw new DataError(f.path, `no such file (--pcap; shard ${shard.index}/${shard.count} reads it)`);
    return { input, file: { path: f.path, bytes: statSync(f.path).size, sha256: '' } };
  });
  for (const s of plan.shares) if (s.input.kind === 'pcap' && !existsSync(s.input.path)) throw new DataError(s.input.path, `no such file (--pcap; shard ${shard.index}/${shard.count} reads it)`);
  const hashing = o.hash === false ? [] : reported.map((r) => sha256(r.file.path).then((h) => void (r.file.sha256 = h)));
  const planInputs = runOpts.inputs.map((s) => (s.kind === 'pcap' || s.kind === 'csv' ? s.path : JSON.stringify(s)));
  if (plan.mode === 'bytes') planInputs[0] = `${planInputs[0]} (${statSync(planInputs[0]!).size} bytes)`;
  if (plan.mode === 'bytes' && o.workers !== undefined && Number(o.workers) > 1) {
    process.stderr.write(`simulate: note: a byte-range shard reads its range on one thread (--workers ${o.workers} not used); give the file more shards instead\n`);
  }
  // The partial-file module (and zlib with it) loads only for a shard's run.
  const { foldSourceRuns, writePartial } = await import('../sim/engine/partial-file.ts');
  const progress = new Progress(process.stderr, 0);
  const r = await runShares({ ...runOpts, plan, onProgress: (done, rss) => progress.update(done, rss) }, async (_run, parts) => foldSourceRuns(parts));
  progress.done();
  await Promise.all(hashing);
  // The split-datagram count (frag-split.ts) of this shard's stretch, with the datagrams at its edges for the merge to join;
  // a shard without fragments has none to count or join.
  const which = splitConfigs(job);
  const sawFragments = r.out.some((p) => p.ingest.fragments > 0 || (p.carry?.count ?? 0) > 0 || Object.keys(p.ingest.skipped).some((k) => k.endsWith('-fragment')));
  const split = which.length && sawFragments
    ? splitPass(plan.shares.flatMap((s) => (s.input.kind === 'pcap' ? [{ path: s.input.path, start: s.input.start, end: s.input.end }] : [])), which.map((c) => c.spec), job.clusterIp, job.lenient ?? false)
    : null;
  const bytes = writePartial(o.partial, {
    shard, plan: { count: shard.count, mode: plan.mode, inputs: planInputs }, job, files: reported, ...(plan.range ? { range: plan.range } : {}), ...(split ? { split } : {}),
  }, r.out);
  const pk = r.out.reduce((n, p) => n + p.ingest.packets, 0);
  const open = r.out.reduce((n, p) => n + p.exports.v4.count + p.exports.v6.count, 0);
  process.stderr.write(`partial ${o.partial === '-' ? '(standard output)' : o.partial}: shard ${shard.index}/${shard.count} (${plan.mode}), ${plan.shares.length} shares, ${pk} packets, ${open} connections at edges, ${bytes} bytes\n`);
}

function mixedResult(pk: { none: number; several: number }, fl: { none: number; several: number }, mixed: number[], cands: { id: string }[]): NonNullable<SimulateResult['mixed']> {
  return {
    members: mixed.map((c, k) => ({ node: k + 1, config: cands[c]!.id })),
    packets_accepted_by_none: pk.none,
    packets_accepted_by_several: pk.several,
    flows_accepted_by_none: fl.none,
    flows_accepted_by_several: fl.several,
  };
}

function gates(o: GateFlags, configs: ConfigResult[], moved: number[]): Gate[] {
  const out: Gate[] = [];
  const metric = (o.gateMetric ?? 'packets') as Metric;
  const maxImb = num(o.maxImbalance, '--max-imbalance', 1, 1e9);
  if (maxImb !== undefined) {
    for (const c of configs) {
      const v = c.stats.find((s) => s.metric === metric)!.max_over_mean;
      out.push({ name: `max-imbalance ${metric} ${c.id}`, threshold: maxImb, value: v, passed: v <= maxImb });
    }
  }
  const minP = num(o.minPValue, '--min-p-value', 0, 1);
  if (minP !== undefined) {
    for (const c of configs) {
      const v = c.stats.find((s) => s.metric === 'flows')!.p_value;
      out.push({ name: `min-p-value flows ${c.id}`, threshold: minP, value: v, passed: v >= minP });
    }
  }
  const maxMig = num(o.maxMigration, '--max-migration', 0, 1);
  if (maxMig !== undefined) {
    moved.forEach((v, j) => out.push({ name: `max-migration A->${ids(j + 1)}`, threshold: maxMig, value: v, passed: v <= maxMig }));
  }
  return out;
}

/** Selector flags given on the command line that only a backend (--backend, --nft, --rule) gives a meaning to. */
function looseSelectorFlags(o: SelectorFlags & { clusterTotalNodes?: string; clusterHashSeed?: string }): string[] {
  const named: [unknown, string][] = [
    [o.hashmode, '--hashmode'], [o.totalNodes ?? o.clusterTotalNodes, '--total-nodes'], [o.hashInit, '--hash-init'],
    [o.hashSeed ?? o.clusterHashSeed, '--hash-seed'], [o.kernel, '--kernel'],
  ];
  return named.filter(([v]) => v !== undefined).map(([, n]) => n);
}
