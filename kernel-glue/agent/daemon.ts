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
 * The pieces, one job each: event-log.ts (the JSON log), transport.ts (the
 * socket, signing and verifying), owner-sync.ts (the kernel's owner set),
 * health.ts (the health command); this file wires them to the core, the
 * timers and the signals.
 */
import { performance } from 'node:perf_hooks';
import { FailoverSchema, heartbeatOf, type ClusterConfig, type Heartbeat } from '../../sim/core/cluster-config.ts';
import { DataError } from '../../sim/core/errors.ts';
import { clusterModel } from '../../sim/cluster/ownership.ts';
import { defaultLeaveTimeout } from '../../sim/cluster/handover.ts';
import type { PolicyConfig } from '../../sim/cluster/policies.ts';
import { AgentCore, numbersOf } from './core.ts';
import { glueActions, type OwnershipActions } from './actions.ts';
import { EventLog } from './event-log.ts';
import { BeatTransport } from './transport.ts';
import { OwnerSync, maskOfNums } from './owner-sync.ts';
import { HealthCommand } from './health.ts';
import { AgentMetrics, serveMetrics } from './metrics.ts';
import { TroubleWatch } from './watch.ts';
import type { Server } from 'node:http';

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
  /** Start-up listening window (default dead_after x interval_s): peers heard within it form the cluster together. */
  startup_s?: number;
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

export interface RunningAgent {
  /** Resolves with the exit code once the agent stopped (0 after a completed leave). */
  done: Promise<number>;
  core: AgentCore;
  /** Starts a voluntary leave (what SIGTERM does). */
  leave(reason: string): void;
  /** Stops at once without releasing anything (tests; what SIGKILL does, minus the kill). */
  abort(): void;
}

/** This node's index; refuses a config the agent cannot run on (unknown node, missing heartbeat addresses). */
function selfIndex(c: ClusterConfig, node: string): number {
  const self = c.nodes.findIndex((n) => n.name === node);
  if (self < 0) throw new DataError(`--node ${node}`, `no node named '${node}' in the config (nodes: ${c.nodes.map((n) => n.name).join(', ')})`);
  const missing = c.nodes.map((n, i) => (n.address ? null : `nodes[${i}].address`)).filter(Boolean);
  if (missing.length) throw new DataError(missing.join(', '), 'the agent sends heartbeats to every node\'s address: add `address: A.B.C.D` to each node');
  return self;
}

const now = (): number => performance.now() / 1000;

/** The running agent: the core, its I/O pieces, the timers and the signal handlers. */
class Agent implements RunningAgent {
  readonly done: Promise<number>;
  private resolveDone!: (code: number) => void;
  private stopped = false;
  private finishing = false;
  private beatTimer: NodeJS.Timeout | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private readTimer: NodeJS.Timeout | null = null;
  private health: HealthCommand | null = null;
  private watch: TroubleWatch | null = null;
  private lastTick = now();
  private readonly sync: OwnerSync;
  private metricsServer: Server | null = null;
  private readonly onTerm = (sig: NodeJS.Signals): void => this.leave(sig);
  private readonly onUsr1 = (): void => {
    this.core.requestFailback(now());
    this.flush();
    this.sendBeat();
  };

  constructor(
    readonly core: AgentCore,
    private readonly o: AgentOptions,
    private readonly hb: Heartbeat,
    private readonly log: EventLog,
    private readonly transport: BeatTransport,
    actions: OwnershipActions,
    private readonly metrics: AgentMetrics,
  ) {
    this.done = new Promise<number>((r) => (this.resolveDone = r));
    this.sync = new OwnerSync({ core, actions, now, emit: (r) => log.emit(r), flush: () => this.flush(), announce: () => this.sendBeat(), onLeft: () => void this.finishLeave(), onRead: (v) => (metrics.load = v.load) });
  }

  /** GET /metrics on the config's address (the section is optional: no server without it). */
  async serveMetrics(address: string, port: number): Promise<void> {
    this.metricsServer = await serveMetrics(address, port, () => this.metrics.render(this.core));
    this.log.emit({ event: 'metrics', listen: `${address}:${port}` });
  }

  flush(): void {
    for (const r of this.core.drainLog()) this.log.emit(r);
  }

  /** A verified beat from a peer: a peer's release or claim is acted on at once, not at the next tick. */
  onBeat(b: Parameters<AgentCore['onBeat']>[0]): void {
    this.core.onBeat(b, now());
    this.flush();
    void this.sync.reconcile();
  }

  sendBeat(): void {
    if (this.stopped) return;
    this.transport.send(this.core.beat(Date.now() / 1000, now()));
  }

  start(): void {
    this.sendBeat();
    this.scheduleBeat();
    const tickMs = Math.max(20, Math.min(250, (this.hb.interval_s * 1000) / 5));
    this.ticker = setInterval(() => this.tick(tickMs), tickMs);
    this.readTimer = setInterval(() => this.sync.readBack(), Math.max(1000, this.hb.interval_s * 1000));
    if (this.o.healthCmd) {
      this.health = new HealthCommand({
        cmd: this.o.healthCmd,
        limit: this.o.healthFails ?? 3,
        every_ms: (this.o.healthInterval_s ?? this.hb.interval_s) * 1000,
        emit: (r) => this.log.emit(r),
        onResult: (ok) => (this.core.health = ok ? 'ok' : 'failing'),
        onLimit: (n) => this.leave(`health command failed ${n} times in a row`),
        paused: () => this.core.leaving || this.stopped,
      });
    }
    if (this.o.config.health) {
      this.watch = new TroubleWatch({
        health: this.o.config.health,
        emit: (r) => this.log.emit(r),
        onTrouble: (why) => this.leave(why),
        paused: () => this.core.leaving || this.stopped,
      });
    }
    if (this.o.signals !== false) {
      process.on('SIGTERM', this.onTerm);
      process.on('SIGINT', this.onTerm);
      process.on('SIGUSR1', this.onUsr1);
    }
  }

  /** Beats: every interval, jittered (uniform ±jitter_s) like a real network's timers. */
  private scheduleBeat(): void {
    const j = this.hb.jitter_s ? (Math.random() * 2 - 1) * this.hb.jitter_s : 0;
    this.beatTimer = setTimeout(() => {
      this.sendBeat();
      this.scheduleBeat();
    }, Math.max(1, (this.hb.interval_s + j) * 1000));
  }

  /**
   * Failure detection and reconciling. After a stall of our own event loop
   * (timers run before queued datagrams are read), detect nothing this tick:
   * the silence may be ours, not the peers'. The next tick runs after the
   * socket is read.
   */
  private tick(tickMs: number): void {
    const t = now();
    const lag = t - this.lastTick;
    const stalled = lag > (2 * tickMs) / 1000 + 0.05;
    this.lastTick = t;
    if (stalled) this.log.emit({ event: 'stall', lag_s: +lag.toFixed(3), note: 'event loop stalled; failure detection deferred one tick' });
    this.core.tick(t, !stalled);
    this.flush();
    void this.sync.reconcile();
  }

  /** Starts a voluntary leave (what SIGTERM does). */
  leave(reason: string): void {
    this.core.startLeave(now(), reason);
    this.flush();
    this.sendBeat();
  }

  abort(): void {
    this.stop(137);
  }

  private async finishLeave(): Promise<void> {
    if (this.finishing) return;
    this.finishing = true;
    this.log.emit({ event: 'left', note: 'every bucket released; stopping' });
    // Two last beats (owning nothing), so peers see the release without waiting for the next interval.
    this.sendBeat();
    await new Promise((r) => setTimeout(r, 50));
    this.sendBeat();
    await new Promise((r) => setTimeout(r, 20));
    this.stop(0);
  }

  private stop(code: number): void {
    if (this.stopped) return;
    this.stopped = true;
    this.sync.stop();
    if (this.ticker) clearInterval(this.ticker);
    if (this.readTimer) clearInterval(this.readTimer);
    this.health?.stop();
    this.watch?.stop();
    if (this.beatTimer) clearTimeout(this.beatTimer);
    if (this.o.signals !== false) {
      process.off('SIGTERM', this.onTerm);
      process.off('SIGINT', this.onTerm);
      process.off('SIGUSR1', this.onUsr1);
    }
    this.flush();
    this.log.emit({ event: 'exit', code, owned: numbersOf(this.core.owned) });
    this.transport.close();
    this.metricsServer?.close();
    this.log.close();
    this.resolveDone(code);
  }
}

export async function startAgent(o: AgentOptions): Promise<RunningAgent> {
  const c = o.config;
  const self = selfIndex(c, o.node);
  const hb = heartbeatOf(c);
  const policy = policyOf(c);
  const t0 = now();
  const inc = Date.now();
  const handover = (c.failover ?? FailoverSchema.parse({})).handover;
  const actions = o.actions ?? glueActions(c, o.node);
  const log = new EventLog(o.node, inc, t0, now, o.jsonLog, o.stderr ?? true);
  const metrics = new AgentMetrics();
  log.observers.push((r) => metrics.observe(r));

  log.emit({ event: 'start', backend: c.cluster.backend, policy: policy.policy, failback: policy.failback, handover, interval_s: hb.interval_s, dead_after: hb.dead_after, takeover_delay_s: hb.takeover_delay_s, port: hb.port, peers: c.nodes.filter((_, i) => i !== self).map((n) => `${n.name}@${n.address}`) });
  const kv = await actions.prepare();
  log.emit({ event: 'kernel', owned: kv.owned, note: 'owner set found on this host at start' });

  let agent: Agent | null = null;
  const transport = await BeatTransport.open({
    port: hb.port,
    address: c.nodes[self]!.address!,
    peers: c.nodes.filter((_, i) => i !== self).map((n) => n.address!),
    key: o.key,
    dir: { self: o.node, addresses: new Map(c.nodes.map((n) => [n.name, n.address ?? null])) },
    clockWindow_s: o.clockWindow_s ?? Math.max(10, 2 * hb.dead_after * hb.interval_s),
    now,
    emit: (r) => log.emit(r),
    onBeat: (b) => agent?.onBeat(b),
    metrics,
  });
  // The start-up listening window begins now that beats can arrive (preparing the kernel may take a while).
  const core = new AgentCore({ model: clusterModel(c), policy, self, interval_s: hb.interval_s, dead_after: hb.dead_after, takeover_delay_s: hb.takeover_delay_s, leave_timeout_s: o.leaveTimeout_s ?? defaultLeaveTimeout(hb.interval_s, hb.dead_after), startup_s: o.startup_s, t0: now(), inc, handover });
  core.setOwned(maskOfNums(kv.owned), kv.load);
  metrics.load = kv.load;
  agent = new Agent(core, o, hb, log, transport, actions, metrics);
  if (c.metrics) {
    try {
      await agent.serveMetrics(c.metrics.address, c.metrics.port);
    } catch (e) {
      agent.abort();
      throw new DataError(`metrics: ${c.metrics.address}:${c.metrics.port}`, `cannot listen: ${(e as Error).message}`);
    }
  }
  agent.start();
  return agent;
}
