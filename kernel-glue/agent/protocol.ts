/**
 * The heartbeat wire format, its authentication and replay protection.
 *
 * A beat is one UDP datagram: the JSON body, a newline, and the lowercase hex
 * HMAC-SHA256 of the body's bytes under the cluster's shared key. The MAC is
 * checked (constant time) before the body is parsed, so nothing an attacker
 * sends without the key reaches the JSON parser, let alone the controller.
 *
 * Replay protection, per sender (kept by the receiver):
 *  - `inc` (incarnation: the sender's start time in ms) never goes back;
 *  - within one incarnation `seq` strictly increases;
 *  - the sender's timestamp `ts` lies within ±window of the receiver's clock
 *    (clocks synchronised by NTP; a replay of a beat from an earlier run, when
 *    the receiver has forgotten that sender, is refused by this window).
 * Without the key nobody can fake a node's death (a beat cannot be
 * suppressed by a forger, only by dropping packets, which is exactly the
 * failure the detector exists for) or fake a takeover (claims travel only in
 * authenticated beats).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { DataError } from '../../sim/core/errors.ts';

export const PROTOCOL_VERSION = 1;
/** Largest datagram we send or accept (a beat is a few hundred bytes). */
export const MAX_BEAT_BYTES = 4096;

export type Health = 'ok' | 'failing' | 'leaving';

/**
 * sim/cluster's AgentState on the wire. Times are relative ("seconds ago" at
 * sending), since each node's clock for them is its own monotonic clock.
 */
export interface BeatView {
  /** Node-index masks. */
  alive: number;
  eligible: number;
  /** Per node index: bucket mask it should own. */
  owners: number[];
  /** Per node index: how long ago it was heard again and started waiting for a stable failback, or null. */
  waiting_ago: (number | null)[];
  /** Per node index: the incarnation the sender last heard from it (its own for itself; 0 = never). */
  incs: number[];
}

/** What a beat says. Node numbers are kernel numbers 1..N, as in the config's `owns`. */
export interface BeatBody {
  v: number;
  /** Sender's node name (from the config). */
  node: string;
  /** Incarnation: the sender's start time in ms; a new value means the agent restarted. */
  inc: number;
  /** Per-incarnation sequence number, from 1. */
  seq: number;
  /** Sender's wall clock when sending, seconds since the epoch. */
  ts: number;
  /** Node numbers the sender's kernel accepts right now (read back, not intended). */
  owned: number[];
  health: Health;
  /** The sender hands its buckets over and will stop (voluntary leave). */
  leaving: boolean;
  /** The sender's view (its policy state), or null while it is still starting up. A restarted node adopts it. */
  view: BeatView | null;
  /** Count of operator failback requests made on the sender (SIGUSR1); an increase asks everyone to fail back to it. */
  fb: number;
  /** Measured packets per owned node number (same order as `owned`), for least-loaded. */
  load: number[];
}

/** Reads the shared key; refuses a file others can read or that is too short. */
export function loadKey(file: string): Buffer {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new DataError(`heartbeat.key_file ${file}`, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message);
  }
  if (!st.isFile()) throw new DataError(`heartbeat.key_file ${file}`, 'not a regular file');
  if (st.mode & 0o007) throw new DataError(`heartbeat.key_file ${file}`, `mode ${(st.mode & 0o777).toString(8)} lets every user read the key; chmod 600 it (anyone with the key can fake heartbeats)`);
  const key = readFileSync(file);
  const trimmed = Buffer.from(key.toString('latin1').replace(/\s+$/, ''), 'latin1');
  if (trimmed.length < 16) throw new DataError(`heartbeat.key_file ${file}`, `the key has ${trimmed.length} bytes; use at least 16 (e.g. head -c 32 /dev/urandom | base64 > ${file})`);
  return trimmed;
}

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest();
}

/** Serialises and signs a beat. */
export function encodeBeat(b: BeatBody, key: Buffer): Buffer {
  const body = Buffer.from(JSON.stringify(b), 'utf8');
  return Buffer.concat([body, Buffer.from('\n' + mac(key, body).toString('hex'), 'latin1')]);
}

export type RejectReason = 'malformed' | 'bad-mac' | 'unknown-node' | 'self' | 'wrong-source' | 'stale' | 'replayed' | 'old-incarnation';

export type Verdict = { ok: true; beat: BeatBody } | { ok: false; reason: RejectReason; detail: string; node?: string };

const isInt = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x);
const isNumArr = (x: unknown): x is number[] => Array.isArray(x) && x.length <= 64 && x.every((v) => typeof v === 'number' && Number.isFinite(v));

function isView(x: unknown): x is BeatView | null {
  if (x === null) return true;
  if (typeof x !== 'object') return false;
  const v = x as Record<string, unknown>;
  return isInt(v.alive) && isInt(v.eligible) && isNumArr(v.owners) && isNumArr(v.incs) && Array.isArray(v.waiting_ago) && v.waiting_ago.length <= 64 &&
    v.waiting_ago.every((w) => w === null || (typeof w === 'number' && Number.isFinite(w) && w >= 0));
}

/** Checks the MAC, then the shape. Does not look at replay state. */
export function decodeBeat(buf: Buffer, key: Buffer): Verdict {
  if (buf.length > MAX_BEAT_BYTES) return { ok: false, reason: 'malformed', detail: `${buf.length} bytes (max ${MAX_BEAT_BYTES})` };
  const nl = buf.lastIndexOf(0x0a);
  if (nl < 0 || buf.length - nl - 1 !== 64) return { ok: false, reason: 'malformed', detail: 'no HMAC trailer' };
  const body = buf.subarray(0, nl);
  const got = Buffer.from(buf.subarray(nl + 1).toString('latin1'), 'hex');
  if (got.length !== 32 || !timingSafeEqual(got, mac(key, body))) {
    // Name the claimed sender for the log, without trusting anything else in the body.
    const claimed = /"node":"([A-Za-z0-9_.-]{1,63})"/.exec(body.toString('utf8'))?.[1];
    return { ok: false, reason: 'bad-mac', detail: 'HMAC does not verify (forged, corrupted, or a different key)', node: claimed };
  }
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return { ok: false, reason: 'malformed', detail: 'body is not JSON' };
  }
  if (
    o === null || typeof o !== 'object' || o.v !== PROTOCOL_VERSION || typeof o.node !== 'string' || !isInt(o.inc) || !isInt(o.seq) || o.seq < 1 ||
    typeof o.ts !== 'number' || !isNumArr(o.owned) || !isNumArr(o.load) || typeof o.leaving !== 'boolean' ||
    !isView(o.view) || !isInt(o.fb) || (o.health !== 'ok' && o.health !== 'failing' && o.health !== 'leaving')
  ) {
    return { ok: false, reason: 'malformed', detail: `not a version ${PROTOCOL_VERSION} beat`, node: typeof o?.node === 'string' ? o.node : undefined };
  }
  return { ok: true, beat: o as unknown as BeatBody };
}

/**
 * The receiver's replay state: per sender the newest (inc, seq) accepted.
 * `window_s` bounds the sender's clock against ours.
 */
export class ReplayGuard {
  private readonly last = new Map<string, { inc: number; seq: number }>();
  constructor(readonly window_s: number) {}

  /** Accepts (and records) or refuses a beat whose MAC already verified. `now` in seconds since the epoch. */
  check(b: BeatBody, now: number): Verdict {
    if (Math.abs(now - b.ts) > this.window_s) {
      return { ok: false, reason: 'stale', detail: `timestamp ${b.ts.toFixed(3)} is ${(now - b.ts).toFixed(3)} s from ours (window ±${this.window_s} s)`, node: b.node };
    }
    const l = this.last.get(b.node);
    if (l) {
      if (b.inc < l.inc) return { ok: false, reason: 'old-incarnation', detail: `incarnation ${b.inc} is older than ${l.inc}`, node: b.node };
      if (b.inc === l.inc && b.seq <= l.seq) return { ok: false, reason: 'replayed', detail: `sequence ${b.seq} already seen (last ${l.seq}, incarnation ${b.inc})`, node: b.node };
    }
    this.last.set(b.node, { inc: b.inc, seq: b.seq });
    return { ok: true, beat: b };
  }
}

export interface PeerDirectory {
  self: string;
  /** Node name -> its heartbeat address (IPv4), or null when the config gives none (then any source is accepted). */
  addresses: Map<string, string | null>;
}

/**
 * Everything a received datagram goes through before the controller sees it:
 * MAC, shape, sender known and not ourselves, source address, replay.
 */
export function verifyDatagram(buf: Buffer, from: string, key: Buffer, dir: PeerDirectory, guard: ReplayGuard, now: number): Verdict {
  const v = decodeBeat(buf, key);
  if (!v.ok) return v;
  const b = v.beat;
  if (!dir.addresses.has(b.node)) return { ok: false, reason: 'unknown-node', detail: `'${b.node}' is not a node of this cluster`, node: b.node };
  if (b.node === dir.self) return { ok: false, reason: 'self', detail: `a beat signed as ourselves (${dir.self}) came from ${from}: a reflected or replayed beat, or two agents with the same --node`, node: b.node };
  const want = dir.addresses.get(b.node);
  if (want && want !== from) return { ok: false, reason: 'wrong-source', detail: `${b.node} beats come from ${want}, this one from ${from}`, node: b.node };
  return guard.check(b, now);
}
