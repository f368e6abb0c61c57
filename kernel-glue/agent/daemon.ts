/**
 * The heartbeat/failover daemon: real sockets, timers, signals and the kernel
 * around the pure AgentCore.
 *
 *  - every `interval_s` (± `jitter_s`) a signed beat goes to every other
 *    node's `address`:`port` over UDP; every received datagram is verified
 *    (HMAC, sender, source address, replay) before the core sees it, and a
 *    refused one is logged with the reason;
 *  - a ticker (interval/5) drives failure detection and applies the owner
 *    set the core wants through kernel-glue, one change at a time, reading
 *    the kernel back after each change (the read-back is what beats claim);
 *  - SIGTERM/SIGINT or `--health-cmd` failing `health_fails` times in a row
 *    start a voluntary leave: announce, wait for the takeover acknowledgement
 *    (bounded), release, exit 0. SIGUSR1 asks for failback (failback: manual).
 *
 * Log events (one JSON object per line; `ts`, `t` seconds since start, `node`, `inc` on each):
 * start, kernel, established (cold-start | join | alone), beat-loss, beat-resumed, dead, rejoin,
 * restart, leave, decision (new owner sets and why), takeover / failback / claim / orphan-claim
 * (a bucket added), release / leave-release (a bucket removed), applied, apply-error, orphaned,
 * orphans-resolved, duplicate, duplicates-resolved, beat-rejected (bad-mac, replayed, stale,
 * old-incarnation, wrong-source, unknown-node, self, malformed), health-fail, health-ok,
 * failback-request, kernel-changed, stall, left, exit.
 *
 * The health command is the one place a shell runs: it is the operator's own
 * command line, given as a flag, run as `/bin/sh -c CMD` (never built from
 * config values).
 */
import { createSocket, type Socket } from 'node:dgram';
import { spawn } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { FailoverSchema, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { DataError } from '../../sim/core/errors.ts';
import { clusterModel } from '../../sim/cluster/ownership.ts';
import type { PolicyConfig } from '../../sim/cluster/policies.ts';
import { AgentCore, numbersOf, type LogRecord } from './core.ts';
import { encodeBeat, ReplayGuard, verifyDatagram, type PeerDirectory } from './protocol.ts';
import { glueActions, type OwnershipActions } from './actions.ts';

export interface AgentOptions {
  config: ClusterConfig;
  /** This node's name. */
  node: string;
  key: Buffer;
  healthCmd?: string;
  /** Consecutive failures of the health command that start a leave. */
  healthFails?: number;
  healthInterval_s?: number;
  /** Give up waiting for the takeover acknowledgement after this long. */
  leaveTimeout_s?: number;
  /** Allowed difference between a beat's timestamp and our clock. */
  clockWindow_s?: number;
  jsonLog?: string;
  /** Also write each JSON record to stderr (default true). */
  stderr?: boolean;
  actions?: OwnershipActions;
  /** Handle SIGTERM/SIGINT/SIGUSR1 (default true). */
  signals?: boolean;
}

/** The policy section of the config, names resolved to node indexes. */
export function policyOf(c: ClusterConfig): PolicyConfig {
  const f = c.failover ?? FailoverSchema.parse({});
  const names = c.nodes.map((n) => n.name);
  const idx = (n: string, key: string): number => {
    const i = names.indexOf(n);
    if (i < 0) throw new DataError(`failover.${key}`, `no node named '${n}' (nodes: ${names.join(', ')})`);
    return i;
  };
  let backup: number[][] | undefined;
  if (f.backup) {
    backup = names.map(() => []);
    for (const [k, list] of Object.entries(f.backup)) backup[idx(k, `backup.${k}`)] = list.map((x, j) => idx(x, `backup.${k}[${j}]`));
  }
  return { policy: f.policy, failback: f.failback, stable_s: f.stable_s, backup };
}

/** Heartbeat parameters with defaults, and the checks the agent needs (addresses, key file). */
export function heartbeatOf(c: ClusterConfig): { interval_s: number; dead_after: number; takeover_delay_s: number; jitter_s: number; port: number; key_file?: string } {
  const h = c.heartbeat ?? { interval_s: 1, dead_after: 3, takeover_delay_s: 0, jitter_s: 0, port: 7946 };
  return { interval_s: h.interval_s, dead_after: h.dead_after, takeover_delay_s: h.takeover_delay_s, jitter_s: h.jitter_s, port: h.port, key_file: h.key_file };
}

export interface RunningAgent {
  /** Resolves with the exit code once the agent stopped (0 after a completed leave). */
  done: Promise<number>;
  core: AgentCore;
  /** Starts a voluntary leave (what SIGTERM does). */
  leave(reason: string): void;
  /** Stops at once without releasing anything (tests; what SIGKILL does, minus the kill). */
  abort(): void;
}

export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  const c = o.config;
  const self = c.nodes.findIndex((n) => n.name === o.node);
  if (self < 0) throw new DataError(`--node ${o.node}`, `no node named '${o.node}' in the config (nodes: ${c.nodes.map((n) => n.name).join(', ')})`);
  const missing = c.nodes.map((n, i) => (n.address ? null : `nodes[${i}].address`)).filter(Boolean);
  if (missing.length) throw new DataError(missing.join(', '), 'the agent sends heartbeats to every node\'s address: add `address: A.B.C.D` to each node');
  const hb = heartbeatOf(c);
  const policy = policyOf(c);
  const model = clusterModel(c);
  const t0 = performance.now() / 1000;
  const inc = Date.now();
  const handover = (c.failover ?? FailoverSchema.parse({})).handover;
  const now = (): number => performance.now() / 1000;
  const actions = o.actions ?? glueActions(c, o.node);
  const logFd = o.jsonLog ? openSync(o.jsonLog, 'a') : null;
  const toStderr = o.stderr ?? true;
  const emit = (r: LogRecord): void => {
    const line = JSON.stringify({ ts: new Date().toISOString(), t: +(now() - t0).toFixed(4), node: o.node, inc, ...r }) + '\n';
    if (logFd !== null) writeSync(logFd, line);
    if (toStderr) process.stderr.write(line);
  };

  const dir: PeerDirectory = { self: o.node, addresses: new Map(c.nodes.map((n) => [n.name, n.address ?? null])) };
  const guard = new ReplayGuard(o.clockWindow_s ?? Math.max(10, 2 * hb.dead_after * hb.interval_s));
  const peers = c.nodes.filter((_, i) => i !== self).map((n) => n.address!);

  emit({ event: 'start', backend: c.cluster.backend, policy: policy.policy, failback: policy.failback, handover, interval_s: hb.interval_s, dead_after: hb.dead_after, takeover_delay_s: hb.takeover_delay_s, port: hb.port, peers: c.nodes.filter((_, i) => i !== self).map((n) => `${n.name}@${n.address}`) });
  const kv = await actions.prepare();
  emit({ event: 'kernel', owned: kv.owned, note: 'owner set found on this host at start' });

  const sock: Socket = createSocket({ type: 'udp4', reuseAddr: false });
  await new Promise<void>((res, rej) => {
    sock.once('error', rej);
    sock.bind(hb.port, c.nodes[self]!.address, () => {
      sock.off('error', rej);
      res();
    });
  });
  sock.on('error', (e) => emit({ event: 'socket-error', error: e.message }));
  // The start-up listening window begins now that beats can arrive (preparing the kernel may take a while).
  const core = new AgentCore({ model, policy, self, interval_s: hb.interval_s, dead_after: hb.dead_after, takeover_delay_s: hb.takeover_delay_s, leave_timeout_s: o.leaveTimeout_s ?? Math.max(5, 4 * hb.dead_after * hb.interval_s), t0: now(), inc, handover });
  core.setOwned(maskOfNums(kv.owned), kv.load);
  const flush = (): void => core.drainLog().forEach(emit);
  // Refused datagrams are logged at most once a second per (reason, source address), with a count of
  // the ones left out, so nobody can fill the disk by sending garbage.
  const rejectSeen = new Map<string, { at: number; suppressed: number }>();
  sock.on('message', (buf, rinfo) => {
    const v = verifyDatagram(buf, rinfo.address, o.key, dir, guard, Date.now() / 1000);
    if (!v.ok) {
      const k = `${v.reason} ${rinfo.address}`, t = now(), r = rejectSeen.get(k);
      if (r && t - r.at < 1) {
        r.suppressed++;
        return;
      }
      if (rejectSeen.size > 1000) rejectSeen.clear();
      rejectSeen.set(k, { at: t, suppressed: 0 });
      emit({ event: 'beat-rejected', reason: v.reason, detail: v.detail, claimed_node: v.node ?? null, from: `${rinfo.address}:${rinfo.port}`, bytes: buf.length, ...(r?.suppressed ? { suppressed_before: r.suppressed } : {}) });
      return;
    }
    core.onBeat(v.beat, now());
    flush();
    void reconcile(); // a peer's release or claim is acted on at once, not at the next tick
  });

  let stopped = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const sendBeat = (): void => {
    if (stopped) return;
    const msg = encodeBeat(core.beat(Date.now() / 1000, now()), o.key);
    for (const a of peers) sock.send(msg, hb.port, a);
  };

  // Beats: every interval, jittered (uniform ±jitter_s) like a real network's timers.
  let beatTimer: NodeJS.Timeout | null = null;
  const scheduleBeat = (): void => {
    const j = hb.jitter_s ? (Math.random() * 2 - 1) * hb.jitter_s : 0;
    beatTimer = setTimeout(() => {
      sendBeat();
      scheduleBeat();
    }, Math.max(1, (hb.interval_s + j) * 1000));
  };
  sendBeat();
  scheduleBeat();

  // Applying: one kernel change at a time, read back afterwards.
  let busy = false;
  let finishing = false;
  const reconcile = async (): Promise<void> => {
    if (busy || stopped) return;
    const t = now();
    const r = core.reconcile(t);
    flush();
    if (r.want === core.owned) {
      if (core.leftCluster && !finishing) void finishLeave();
      return;
    }
    busy = true;
    const from = numbersOf(core.owned), to = numbersOf(r.want);
    const started = now();
    try {
      await actions.set(from, to);
      const back = await actions.read();
      core.setOwned(maskOfNums(back.owned), back.load);
      for (const a of r.added) emit({ event: a.cause === 'takeover' ? 'takeover' : a.cause.startsWith('orphan') ? 'orphan-claim' : a.cause === 'leave' ? 'leave-takeover' : a.cause === 'failback' || a.cause === 'rejoin' ? 'failback' : 'claim', bucket: a.bucket, cause: a.cause });
      for (const x of r.removed) emit({ event: core.leaving ? 'leave-release' : 'release', bucket: x.bucket, cause: x.cause });
      emit({ event: 'applied', from, to, kernel: back.owned, took_ms: +((now() - started) * 1000).toFixed(1) });
      sendBeat(); // tell the peers at once: a claim is what lets them release (make-before-break)
    } catch (e) {
      emit({ event: 'apply-error', from, to, error: (e as Error).message });
      try {
        const back = await actions.read();
        core.setOwned(maskOfNums(back.owned), back.load);
      } catch { /* keep the last known set */ }
    } finally {
      busy = false;
    }
    if (core.leftCluster && !finishing) void finishLeave();
  };

  const tickMs = Math.max(20, Math.min(250, (hb.interval_s * 1000) / 5));
  let lastTick = now();
  const ticker = setInterval(() => {
    // After a stall of our own event loop (timers run before queued datagrams are read), detect nothing
    // this tick: the silence may be ours, not the peers'. The next tick runs after the socket is read.
    const t = now();
    const lag = t - lastTick;
    const stalled = lag > (2 * tickMs) / 1000 + 0.05;
    lastTick = t;
    if (stalled) emit({ event: 'stall', lag_s: +lag.toFixed(3), note: 'event loop stalled; failure detection deferred one tick' });
    core.tick(t, !stalled);
    flush();
    void reconcile();
  }, tickMs);

  // Periodic read-back: our claims stay the kernel's truth even if someone else changed it.
  const readTimer = setInterval(() => {
    if (busy || stopped) return;
    busy = true;
    actions.read().then((b) => {
      const m = maskOfNums(b.owned);
      if (m !== core.owned) emit({ event: 'kernel-changed', was: numbersOf(core.owned), now: b.owned, note: 'owner set changed outside the agent' });
      core.setOwned(m, b.load);
    }, (e: Error) => emit({ event: 'read-error', error: e.message })).finally(() => (busy = false));
  }, Math.max(1000, hb.interval_s * 1000));

  // Health command.
  let healthFailures = 0;
  let healthRunning = false;
  let healthTimer: NodeJS.Timeout | null = null;
  if (o.healthCmd) {
    const limit = o.healthFails ?? 3;
    const every = (o.healthInterval_s ?? hb.interval_s) * 1000;
    healthTimer = setInterval(() => {
      if (healthRunning || core.leaving || stopped) return;
      healthRunning = true;
      const child = spawn('/bin/sh', ['-c', o.healthCmd!], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-500)));
      const kill = setTimeout(() => child.kill('SIGKILL'), Math.max(every * 3, 2000));
      child.on('close', (code, sig) => {
        clearTimeout(kill);
        healthRunning = false;
        if (code === 0) {
          if (healthFailures) emit({ event: 'health-ok', after_failures: healthFailures });
          healthFailures = 0;
          core.health = 'ok';
          return;
        }
        healthFailures++;
        core.health = 'failing';
        emit({ event: 'health-fail', exit: code, signal: sig, count: healthFailures, limit, stderr: err.trim() || undefined });
        if (healthFailures >= limit) {
          core.startLeave(now(), `health command failed ${healthFailures} times in a row`);
          flush();
          sendBeat();
        }
      });
      child.on('error', (e) => emit({ event: 'health-fail', error: e.message }));
    }, every);
  }

  const stop = (code: number): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(ticker);
    clearInterval(readTimer);
    if (healthTimer) clearInterval(healthTimer);
    if (beatTimer) clearTimeout(beatTimer);
    if (o.signals !== false) {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onTerm);
      process.off('SIGUSR1', onUsr1);
    }
    flush();
    emit({ event: 'exit', code, owned: numbersOf(core.owned) });
    sock.close();
    if (logFd !== null) closeSync(logFd);
    resolveDone(code);
  };

  const finishLeave = async (): Promise<void> => {
    finishing = true;
    emit({ event: 'left', note: 'every bucket released; stopping' });
    // Two last beats (owning nothing), so peers see the release without waiting for the next interval.
    sendBeat();
    await new Promise((r) => setTimeout(r, 50));
    sendBeat();
    await new Promise((r) => setTimeout(r, 20));
    stop(0);
  };

  const leave = (reason: string): void => {
    core.startLeave(now(), reason);
    flush();
    sendBeat();
  };
  const onTerm = (sig: NodeJS.Signals): void => leave(sig);
  const onUsr1 = (): void => {
    core.requestFailback(now());
    flush();
    sendBeat();
  };
  if (o.signals !== false) {
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onTerm);
    process.on('SIGUSR1', onUsr1);
  }
  return { done, core, leave, abort: () => stop(137) };
}

function maskOfNums(nums: readonly number[]): number {
  let m = 0;
  for (const k of nums) if (k >= 1 && k <= 32) m = (m | (1 << (k - 1))) >>> 0;
  return m;
}
