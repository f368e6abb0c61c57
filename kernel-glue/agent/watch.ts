/**
 * Early signs of trouble (the config's `health` section): the default
 * gateway's answer to ICMP echo, the link's carrier and error counters, free
 * disk space, available memory. Each check that crosses its threshold calls
 * `onTrouble` once; the agent then leaves through the normal leave path, so
 * the node's buckets move before it fails (the controlling script CLUSTERIP
 * was meant to run beside).
 *
 * ICMP goes through the optional `raw-socket` package (a native addon, like
 * `cap`): loaded lazily, on the main thread only, with a clear message when it
 * is missing.
 */
import { readFileSync, statfsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import { DataError, UsageError } from '../../sim/core/errors.ts';
import type { LogRecord } from './core.ts';

type HealthSection = NonNullable<ClusterConfig['health']>;

/** What raw-socket offers that we use (the package has no types). */
export interface RawSocket {
  send(buf: Buffer, offset: number, length: number, address: string, cb: (err: Error | null) => void): void;
  on(ev: 'message', cb: (buf: Buffer, source: string) => void): void;
  /** A failed poll is emitted with no error object (raw-socket's HandleIOEvent), then the socket closes. */
  on(ev: 'error', cb: (err?: Error) => void): void;
  on(ev: 'close', cb: () => void): void;
  close(): void;
}
export interface RawModule {
  createSocket(o: { protocol: number }): RawSocket & { setOption(level: number, option: number, value: number): void; pauseRecv(): void };
  Protocol: { ICMP: number };
  SocketLevel: { IPPROTO_IP: number };
  SocketOption: { IP_HDRINCL: number };
  writeChecksum(buf: Buffer, offset: number, sum: number): Buffer;
  createChecksum(...bufs: Buffer[]): number;
}

/** Loads raw-socket, or explains how to get it; `user` names what needs it (a config key or a command). */
export function loadRawSocket(user = 'health.gateway'): RawModule {
  if (!isMainThread) throw new UsageError(`${user}: raw sockets are opened on the main thread only (raw-socket is a native addon)`);
  try {
    return createRequire(import.meta.url)('raw-socket') as RawModule;
  } catch (e) {
    throw new UsageError(`${user} needs the optional package 'raw-socket' (npm install raw-socket; it builds with node-gyp: apt-get install build-essential python3): ${(e as Error).message}`);
  }
}

/** An ICMP echo request (type 8) with identifier and sequence number, checksummed. */
export function echoRequest(raw: Pick<RawModule, 'writeChecksum' | 'createChecksum'>, id: number, seq: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 8;
  b.writeUInt16BE(id & 0xffff, 4);
  b.writeUInt16BE(seq & 0xffff, 6);
  b.write('cipsim!!', 8, 'latin1');
  raw.writeChecksum(b, 2, raw.createChecksum(b));
  return b;
}

/** The (identifier, sequence) of an ICMP echo reply in a raw IPv4 datagram, or null. */
export function echoReplyOf(ip: Buffer): { id: number; seq: number } | null {
  if (ip.length < 20 || ip[0]! >> 4 !== 4) return null;
  const off = (ip[0]! & 0x0f) * 4;
  if (ip.length < off + 8 || ip[9] !== 1 || ip[off] !== 0) return null;
  return { id: ip.readUInt16BE(off + 4), seq: ip.readUInt16BE(off + 6) };
}

export interface WatchOptions {
  health: HealthSection;
  emit: (r: LogRecord) => void;
  /** Called once, with the reason in words, when a check crosses its threshold. */
  onTrouble: (reason: string) => void;
  /** Skip checks while this holds (leaving, stopped). */
  paused: () => boolean;
}

export class TroubleWatch {
  private readonly timers: NodeJS.Timeout[] = [];
  private sock: RawSocket | null = null;
  private fired = false;
  private lastErrors: number | null = null;

  constructor(private readonly o: WatchOptions) {
    const h = o.health;
    if (h.gateway) this.startGateway(h.gateway);
    if (h.link || h.disk || h.memory) {
      this.timers.push(setInterval(() => this.checkHost(), h.interval_s * 1000));
    }
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.sock?.close();
    this.sock = null;
  }

  private trouble(check: string, reason: string, detail: Record<string, unknown>): void {
    if (this.fired || this.o.paused()) return;
    this.fired = true;
    this.o.emit({ event: 'trouble', check, reason, ...detail });
    this.o.onTrouble(reason);
  }

  /** Echo every interval; a request without a reply before the next one counts as a miss. */
  private startGateway(g: NonNullable<HealthSection['gateway']>): void {
    const raw = loadRawSocket();
    const id = process.pid & 0xffff;
    let seq = 0;
    let answered = true;
    let misses = 0;
    // raw-socket closes a socket whose poll failed (emitting 'error' with no error object), and a
    // closed socket never sends again: the next tick opens a new one, so that a local failure is
    // reported as such instead of turning into gateway misses.
    let sock: RawSocket | null = null;
    const open = (): RawSocket => {
      const s = raw.createSocket({ protocol: raw.Protocol.ICMP });
      s.on('message', (buf, source) => {
        const r = echoReplyOf(buf);
        if (r && r.id === id && r.seq === (seq & 0xffff) && source === g.address) answered = true;
      });
      s.on('error', (e) => this.o.emit({ event: 'gateway-error', error: e?.message ?? 'the raw ICMP socket failed (reopened on the next echo)' }));
      s.on('close', () => { if (sock === s) sock = null; });
      this.sock = s;
      return s;
    };
    sock = open();
    const tick = (): void => {
      if (this.o.paused()) return;
      if (!answered) {
        misses++;
        this.o.emit({ event: 'gateway-miss', gateway: g.address, count: misses, limit: g.fails });
        if (misses >= g.fails) return this.trouble('gateway', `default gateway ${g.address} did not answer ${misses} ICMP echo requests in a row`, { gateway: g.address, misses });
      } else if (misses) {
        this.o.emit({ event: 'gateway-ok', gateway: g.address, after_misses: misses });
        misses = 0;
      }
      answered = false;
      seq++;
      sock ??= open();
      sock.send(echoRequest(raw, id, seq), 0, 16, g.address, (err) => {
        if (err) this.o.emit({ event: 'gateway-error', error: err.message });
      });
    };
    tick();
    this.timers.push(setInterval(tick, g.interval_s * 1000));
  }

  private checkHost(): void {
    const h = this.o.health;
    if (this.o.paused()) return;
    try {
      if (h.link) {
        const base = `/sys/class/net/${h.link.interface}`;
        if (h.link.carrier && readFileSync(`${base}/carrier`, 'utf8').trim() !== '1') {
          return this.trouble('link', `${h.link.interface} lost its carrier`, { interface: h.link.interface });
        }
        if (h.link.max_errors !== undefined) {
          const errs = ['rx_errors', 'tx_errors'].reduce((s, f) => s + Number(readFileSync(`${base}/statistics/${f}`, 'utf8')), 0);
          const grew = this.lastErrors === null ? 0 : errs - this.lastErrors;
          this.lastErrors = errs;
          if (grew > h.link.max_errors) return this.trouble('link', `${h.link.interface}: ${grew} new rx/tx errors in ${h.interval_s} s (limit ${h.link.max_errors})`, { interface: h.link.interface, errors: grew });
        }
      }
      if (h.disk) {
        const st = statfsSync(h.disk.path);
        const pct = (100 * st.bavail) / st.blocks;
        if (pct < h.disk.min_free_pct) return this.trouble('disk', `${h.disk.path} has ${pct.toFixed(1)}% free (limit ${h.disk.min_free_pct}%)`, { path: h.disk.path, free_pct: +pct.toFixed(2) });
      }
      if (h.memory) {
        const mi = readFileSync('/proc/meminfo', 'utf8');
        const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(mi)?.[1] ?? NaN);
        const pct = (100 * kb('MemAvailable')) / kb('MemTotal');
        if (pct < h.memory.min_available_pct) return this.trouble('memory', `${pct.toFixed(1)}% of memory available (limit ${h.memory.min_available_pct}%)`, { available_pct: +pct.toFixed(2) });
      }
    } catch (e) {
      // A check that cannot read its source is reported, not taken for trouble.
      this.o.emit({ event: 'health-check-error', error: e instanceof DataError ? e.message : (e as Error).message });
    }
  }
}
