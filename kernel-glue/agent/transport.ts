/**
 * Heartbeats on the wire: one UDP socket bound to this node's address, signed
 * beats out to every peer, every datagram in verified (HMAC, sender, source
 * address, replay; protocol.ts) before the core sees it. A refused datagram is
 * logged at most once a second per (reason, source address), with a count of
 * the ones left out, so nobody can fill the disk by sending garbage.
 */
import { createSocket, type Socket } from 'node:dgram';
import type { LogRecord } from './core.ts';
import { encodeBeat, ReplayGuard, verifyDatagram, type BeatBody, type PeerDirectory } from './protocol.ts';
import type { AgentMetrics } from './metrics.ts';

export interface TransportOptions {
  port: number;
  /** This node's heartbeat address (bound). */
  address: string;
  peers: readonly string[];
  key: Buffer;
  dir: PeerDirectory;
  clockWindow_s: number;
  now: () => number;
  emit: (r: LogRecord) => void;
  /** A verified beat from a peer. */
  onBeat: (b: BeatBody) => void;
  /** Counts beats sent, received and refused (every refusal, also those the log leaves out). */
  metrics: AgentMetrics;
}

export class BeatTransport {
  private readonly guard: ReplayGuard;
  private readonly rejectSeen = new Map<string, { at: number; suppressed: number }>();

  private constructor(private readonly sock: Socket, private readonly o: TransportOptions) {
    this.guard = new ReplayGuard(o.clockWindow_s);
    sock.on('error', (e) => o.emit({ event: 'socket-error', error: e.message }));
    sock.on('message', (buf, rinfo) => this.receive(buf, rinfo.address, rinfo.port));
  }

  /** Binds the socket; resolves once beats can arrive. */
  static async open(o: TransportOptions): Promise<BeatTransport> {
    const sock = createSocket({ type: 'udp4', reuseAddr: false });
    await new Promise<void>((res, rej) => {
      sock.once('error', rej);
      sock.bind(o.port, o.address, () => {
        sock.off('error', rej);
        res();
      });
    });
    return new BeatTransport(sock, o);
  }

  send(body: BeatBody): void {
    const msg = encodeBeat(body, this.o.key);
    for (const a of this.o.peers) this.sock.send(msg, this.o.port, a);
    this.o.metrics.sent += this.o.peers.length;
  }

  close(): void {
    this.sock.close();
  }

  private receive(buf: Buffer, address: string, port: number): void {
    const v = verifyDatagram(buf, address, this.o.key, this.o.dir, this.guard, Date.now() / 1000);
    if (v.ok) {
      this.o.metrics.bump(this.o.metrics.received, v.beat.node);
      this.o.onBeat(v.beat);
      return;
    }
    this.o.metrics.bump(this.o.metrics.rejected, v.reason);
    const k = `${v.reason} ${address}`, t = this.o.now(), r = this.rejectSeen.get(k);
    if (r && t - r.at < 1) {
      r.suppressed++;
      return;
    }
    if (this.rejectSeen.size > 1000) this.rejectSeen.clear();
    this.rejectSeen.set(k, { at: t, suppressed: 0 });
    this.o.emit({ event: 'beat-rejected', reason: v.reason, detail: v.detail, claimed_node: v.node ?? null, from: `${address}:${port}`, bytes: buf.length, ...(r?.suppressed ? { suppressed_before: r.suppressed } : {}) });
  }
}
