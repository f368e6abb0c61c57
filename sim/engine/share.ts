/**
 * Processes one share of the input (a byte range of a capture, a synthetic
 * share, a CSV file): decode -> flow table -> every selector -> counters.
 * Runs inside a worker or in-process; everything it returns merges by sums
 * and unions, so the answer does not depend on how the input was split.
 */
import { countsAsPacket, takeBatch, releaseBatch, F, L4, FAMILY_IPV4, DEFAULT_BATCH_CAPACITY, type TupleBatch } from '../traffic/batch.ts';
import { buildSelector } from '../select/build.ts';
import type { Selector } from '../select/selector.ts';
import { hashesConntrackOriginal, parseNftHash } from '../select/nft-expr.ts';
import { ConnTable, REORDER_SLACK, trimRecords, type FlowRecords } from './conn-table.ts';
import { FlowSink } from './flow-sink.ts';
import { openInput } from './inputs.ts';
import { CaptureInput } from '../traffic/capture.ts';
import type { PacketInput } from '../traffic/input.ts';
import { keepToClusterIp } from './cluster-filter.ts';
import { Judge, type CtTransfer } from '../cluster/ct-model.ts';
import type { ConfigPartial, CtScanTask, SimPartial, SimTask } from './task.ts';

/** Selectors whose answer depends on the conntrack direction (they hash the original source). */
export function directionDependent(sel: Selector): boolean {
  if (sel.backend === 'xt_cluster') return true;
  return sel.backend === 'nft' && sel.spec.backend === 'nft' && hashesConntrackOriginal(parseNftHash(sel.spec.expr));
}

/** Whether conntrack validity is modelled for an input: CSV tuples carry no TCP flags, and a namespace without conntrack has none. */
export function judges(input: SimTask['input']): boolean {
  return input.kind !== 'csv' && !(input.kind === 'pcap' && input.noDefrag === true);
}

/**
 * The conntrack model's first pass over a share (a share after the first of
 * its stream): what it does to the table whatever it starts from, for run.ts
 * to compose into the next shares' start states.
 */
export function scanShare(task: CtScanTask): CtTransfer {
  const judge = new Judge(task.tcpLoose, task.flowTimeout);
  if (!task.chain.first) judge.scan(-Infinity);
  const batch = takeBatch(DEFAULT_BATCH_CAPACITY);
  const src = openInput(task.input);
  try {
    while (src.fill(batch) > 0) judge.judge(batch);
  } finally {
    src.close();
    releaseBatch(batch);
  }
  return judge.transfer();
}

/**
 * Adds a batch's first `m` packets to a configuration's per-node counters
 * from their buckets `o` (packets, frames and bytes only when `exact`:
 * direction-dependent selectors count packets per connection, once its
 * direction is known). A function of its own, not a loop inside
 * processInput: V8 optimises this small function after a few batches instead
 * of running it unoptimised (boxing every double it adds) until processInput
 * as a whole is compiled.
 */
function countConfig(batch: TupleBatch, m: number, o: Int32Array, cp: ConfigPartial, exact: boolean): void {
  const packets = cp.packets, frames = cp.frames, bytes = cp.bytes, wirelen = batch.wirelen;
  let noNode = 0, unknown = 0;
  for (let i = 0; i < m; i++) {
    const b = o[i]!;
    if (b >= 0) {
      if (exact) {
        packets[b] = packets[b]! + countsAsPacket(batch, i);
        frames[b] = frames[b]! + 1;
        bytes[b] = bytes[b]! + wirelen[i]!;
      }
    } else if (b === -1) noNode++;
    else unknown++;
  }
  cp.noNode += noNode;
  cp.unknown += unknown;
}

/**
 * Processes one share: every packet is hashed by every selector (per-node
 * packets and bytes, exact), then counted in its connection; connections that
 * end go to the FlowSink, those that may continue in a neighbouring share are
 * exported for merge.ts.
 */
export function processShare(task: SimTask): SimPartial {
  // A share of a longer stream carries the fragments it cannot finish to the merge (frag-carry.ts).
  const i = task.input;
  const src = openInput(i.kind === 'pcap' && !(task.chain.first && task.chain.last) ? { ...i, carry: true } : i);
  return processInput(task, src, false, judges(i));
}

/**
 * The share's work over an opened input. `allHead`: every connection may
 * continue one of the share before (merge.ts's share of fragments completed
 * at an edge, which sits between two shares). `judging`: conntrack validity
 * is modelled (cluster/ct-model.ts; see `judges`). The datagrams merge.ts
 * completes at an edge are judged from the state in `task.ctStart` and `task.ctCompose` if any,
 * else each alone.
 */
export function processInput(task: Omit<SimTask, 'input'>, src: PacketInput, allHead = false, judging = true): SimPartial {
  const selectors = task.selectors.map((s) => buildSelector(s));
  const C = selectors.length;
  const dirDep = selectors.map(directionDependent);
  const anyDirDep = dirDep.some(Boolean);
  const configs: ConfigPartial[] = selectors.map((s) => ({
    packets: new Float64Array(s.buckets),
    frames: new Float64Array(s.buckets),
    bytes: new Float64Array(s.buckets),
    noNode: 0,
    unknown: 0,
  }));
  const cap = task.batchCapacity ?? DEFAULT_BATCH_CAPACITY;
  const batch: TupleBatch = takeBatch(cap);
  const outO = selectors.map(() => new Int32Array(cap));
  const outR = selectors.map((_, c) => (dirDep[c] ? new Int32Array(cap) : null));
  const sink = new FlowSink({ selectors: task.selectors, buckets: selectors.map((s) => s.buckets), dirDep, mixed: task.mixed, sources: task.topSources ?? true, spill: task.sourceSpill ?? null });
  const onEnd = (r: FlowRecords): void => sink.consume(r);
  const v4 = new ConnTable({ kw: 4, c: C, timeout: task.flowTimeout, onEnd });
  const v6 = new ConnTable({ kw: 10, c: C, timeout: task.flowTimeout, onEnd }, 16);
  const mixed = task.mixed;
  const mixedOut = mixed ? { none: 0, several: 0 } : null;
  const progress = task.progress ? new Float64Array(task.progress.buffer) : null;
  const clusterIp = task.clusterIp;
  let notToCluster = 0;
  let done = 0;
  let started = task.chain.first || allHead;
  if (allHead) v4.headUntil = v6.headUntil = Infinity;
  const track = task.connections ?? true;
  if (!track && anyDirDep) throw new Error('selectors that follow the conntrack direction need connection tracking');

  // Conntrack validity, followed through the whole stream (both directions, before the cluster-IP filter),
  // from the state run.ts composed for the share's start.
  const judge = judging ? new Judge(task.tcpLoose ?? true, task.flowTimeout) : null;
  if (judge && task.ctStart) judge.seed(task.ctStart);
  if (judge && task.ctCompose) for (const t of task.ctCompose) judge.compose(t);
  try {
    for (;;) {
      const n = src.fill(batch);
      if (n === 0) break;
      judge?.judge(batch);
      // Keep only packets addressed to the cluster IP (the others never meet the rule).
      if (clusterIp !== null) notToCluster += keepToClusterIp(batch, clusterIp);
      const m = batch.count;
      if (m > 0 && !started) {
        // A later share: connections opened within a timeout of its first packet may be the
        // continuation of one from the share before (merge.ts decides).
        started = true;
        v4.headUntil = v6.headUntil = batch.ts[0]! + task.flowTimeout + REORDER_SLACK;
      }
      if (track) {
        v4.sweep();
        v6.sweep();
      }
      selectBatch(selectors, batch, m, outO, outR, anyDirDep);
      if (track) trackBatch(batch, m, v4, v6, outO, outR, judge !== null);
      countBatch(configs, dirDep, batch, m, outO);
      if (mixed && mixedOut) countMixed(mixed, mixedOut, m, outO);
      done += n;
      if (progress) progress[task.progress!.slot] = done;
    }
  } finally {
    src.close();
    releaseBatch(batch);
  }
  v4.finish(task.chain.last);
  v6.finish(task.chain.last);
  return {
    configs,
    summary: sink.summary(),
    exports: { v4: trimRecords(v4.exports), v6: trimRecords(v6.exports) },
    chain: task.chain,
    mixed: mixedOut,
    ingest: { ...src.stats, skipped: { ...src.stats.skipped } },
    notToCluster,
    ct: judge ? { ...judge.stats } : null,
    carry: src instanceof CaptureInput ? src.carried() : null,
    ...(judge && task.wantCtEnd ? { ctEnd: judge.state() } : {}),
  };
}

/*
 * The per-batch steps of processInput, one function each. Kept out of
 * processInput's body on purpose: V8 compiles a hot loop in the middle of a
 * running function (on-stack replacement) before the code after that loop
 * has run once, and then throws the compiled code away when that code is
 * first reached ("insufficient type feedback"); with every step's loop inside
 * processInput, each of those recompiled the whole function with everything
 * inlined (measured on the 1M-packet capture: processInput compiled five
 * times, the largest of the run's compile jobs). As functions of their own,
 * a step compiles once it is hot, alone.
 */

/** Every selector over the whole batch, as original direction; and as reply direction where that matters. */
function selectBatch(selectors: Selector[], batch: TupleBatch, m: number, outO: Int32Array[], outR: (Int32Array | null)[], anyDirDep: boolean): void {
  const C = selectors.length;
  for (let c = 0; c < C; c++) selectors[c]!.select(batch, outO[c]!, 0, m);
  if (anyDirDep) {
    for (let i = 0; i < m; i++) batch.flags[i] = batch.flags[i]! | F.REPLY;
    for (let c = 0; c < C; c++) if (outR[c]) selectors[c]!.select(batch, outR[c]!, 0, m);
    for (let i = 0; i < m; i++) batch.flags[i] = batch.flags[i]! & ~F.REPLY;
  }
}

/** Counts every packet of the batch in its connection; `judging`: a packet conntrack marks INVALID belongs to no connection (it gets no entry). */
function trackBatch(batch: TupleBatch, m: number, v4: ConnTable, v6: ConnTable, outO: Int32Array[], outR: (Int32Array | null)[], judging: boolean): void {
  for (let i = 0; i < m; i++) {
    if (judging && (batch.l4flags[i]! & L4.CT_INVALID) !== 0) continue;
    if (batch.family[i] === FAMILY_IPV4) v4.trackV4(batch, i, outO, outR);
    else v6.trackV6(batch, i, outO, outR);
  }
}

/** Per-node packets, frames and bytes of each configuration (countConfig). */
function countBatch(configs: ConfigPartial[], dirDep: boolean[], batch: TupleBatch, m: number, outO: Int32Array[]): void {
  for (let c = 0; c < configs.length; c++) countConfig(batch, m, outO[c]!, configs[c]!, !dirDep[c]);
}

/** A mixed cluster: node k accepts when the selector it runs puts the packet in bucket k-1. */
function countMixed(mixed: number[], out: { none: number; several: number }, m: number, outO: Int32Array[]): void {
  for (let i = 0; i < m; i++) {
    let acc = 0;
    for (let k = 0; k < mixed.length; k++) if (outO[mixed[k]!]![i] === k) acc++;
    if (acc === 0) out.none++;
    else if (acc > 1) out.several++;
  }
}
