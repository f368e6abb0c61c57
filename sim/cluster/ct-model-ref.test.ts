/**
 * The Judge's tables and fast paths against a plain reference: a Map of
 * entries, one `step` call per packet (the model's function, tested on its own
 * in ct-model.test.ts), written here from the Judge's documented rules. Random
 * streams over few endpoints cover what the capture-driven tests barely
 * reach: IPv6 and ICMP keys, fragments, truncated and decoder-INVALID
 * packets, entries expiring and sweeps dropping them while the table grows,
 * timestamps a little out of order, and scan mode with keys still pending at
 * the end. Compared: every verdict, the stats, the state's entries, a scan's
 * transfer, and the invariant engine/run.ts rests on (scan, compose and seed
 * shares give the verdicts of one pass).
 */
import { describe, expect, it } from 'vitest';
import { createBatch, F, FAMILY_IPV6, L4, type TupleBatch } from '../traffic/batch.ts';
import { connKey, connKeyWords } from './conn-key.ts';
import { CT_KW, Judge, K, packetKind, SET_INVALID, SET_NEXT, step, stepSet, V, wireFlags, type CtState, type CtTransfer, type JudgeStats, type StepOut } from './ct-model.ts';

const KW = CT_KW;
const SLACK = 5;
const ICMP_REQUEST_OF: Record<number, number> = { 0: 8, 14: 13, 16: 15, 18: 17 };

interface Entry { key: number[]; code: number; last: number; assumed: number; pend: number }

/** The rules of ct-model.ts's Judge over a Map, no tables, no fast path. */
class Reference {
  readonly stats: JudgeStats = { invalid: 0, assumed: 0, icmpErrors: 0 };
  /** Most entries held at once, and entries sweeps dropped (how far a stream drives the tables). */
  peak = 0;
  dropped = 0;
  private readonly m = new Map<string, Entry>();
  private newest = -Infinity;
  private lastSweep = -Infinity;
  private scanning = false;
  private scanFrom = -Infinity;
  private readonly possible: number[] = [];
  private readonly pendKey: number[][] = [];
  private readonly log: { ts: number; word: number; id: number }[] = [];
  private readonly o: StepOut = { code: 0, verdict: 0, assumed: false };

  constructor(readonly loose: boolean, readonly timeout: number) {}

  scan(): void { this.scanning = true; }

  judge(b: TupleBatch): void {
    if (b.count > 0 && this.scanning && this.scanFrom === -Infinity) this.scanFrom = b.ts[0]! + this.timeout + SLACK;
    for (let i = 0; i < b.count; i++) {
      const fl = b.flags[i]!;
      if (fl & F.TRUNCATED || b.l4flags[i]! & L4.CT_INVALID) continue;
      const kind = packetKind(b, i), counts = (fl & F.FRAGMENT) === 0 || (b.l4flags[i]! & L4.COMPLETES) !== 0;
      if (kind === K.ICMP_NONE) {
        b.l4flags[i] = b.l4flags[i]! | L4.CT_INVALID;
        this.stats.invalid++;
        const t = b.l4a[i]! >>> 24;
        if (b.proto[i] === 1 ? [3, 4, 5, 11, 12].includes(t) : t >= 1 && t <= 4) this.stats.icmpErrors++;
        continue;
      }
      if (kind === K.OTHER) { if (counts) this.newest = Math.max(this.newest, b.ts[i]!); continue; }
      const k = new Uint32Array(KW), d = connKey(b, i, k);
      if (kind === K.ICMP_REQUEST || kind === K.ICMP_REPLY) {
        const t = b.l4a[i]! >>> 24;
        const req = kind === K.ICMP_REQUEST ? t : b.proto[i] === 1 ? ICMP_REQUEST_OF[t]! : t - 1;
        k[connKeyWords(b, i) - 1] = ((b.l4b[i]! >>> 16) << 8 | req) >>> 0;
      }
      if (this.apply([...k], b.ts[i]!, kind, wireFlags(fl), d, counts) === V.INVALID) {
        b.l4flags[i] = b.l4flags[i]! | L4.CT_INVALID;
        if (counts) this.stats.invalid++;
      }
    }
    this.peak = Math.max(this.peak, this.m.size);
    if (this.newest - this.lastSweep >= this.timeout / 4) { this.lastSweep = this.newest; this.sweep(this.newest - this.timeout - SLACK); }
  }

  private apply(key: number[], ts: number, kind: number, th: number, d: number, counts: boolean): number {
    const name = key.join(',');
    let e = this.m.get(name);
    const live = e !== undefined && ts - e.last <= this.timeout;
    const code = live ? e!.code : 0, was = live ? e!.assumed : 0;
    const { code: next, verdict, assumed } = step(code, kind, th, d, this.loose, this.o);
    if (this.scanning && counts) e = this.follow(name, key, e, live, ts, kind, th, d);
    if (verdict === V.INVALID || !counts) return verdict;
    if (!e) { e = { key, code: 0, last: 0, assumed: 0, pend: 0 }; this.m.set(name, e); }
    if (assumed && !was) this.stats.assumed++;
    e.assumed = assumed || was ? 1 : 0;
    e.code = next;
    e.last = ts;
    this.newest = Math.max(this.newest, ts);
    return verdict;
  }

  private follow(name: string, key: number[], e: Entry | undefined, live: boolean, ts: number, kind: number, th: number, d: number): Entry | undefined {
    let id = e ? e.pend - 1 : -1;
    if (id < 0) {
      if (live || e || ts > this.scanFrom) return e;
      id = this.possible.length;
      this.possible.push(kind === K.TCP ? (1 << 19) - 1 : 7);
      this.pendKey.push(key);
      e = { key, code: 0, last: 0, assumed: 0, pend: id + 1 };
      this.m.set(name, e);
    }
    this.log.push({ ts, word: kind | (th << 3) | (d << 9) | (1 << 10), id });
    const o: StepOut = { code: 0, verdict: 0, assumed: false };
    let next = 0, allValid = true;
    for (let c = 0; c < 19; c++) {
      if (!((this.possible[id]! | 1) & (1 << c))) continue;
      step(c, kind, th, d, this.loose, o);
      if (o.verdict === V.INVALID) { allValid = false; next |= 1 << c; } else next |= 1 << o.code;
    }
    this.possible[id] = next;
    if (allValid && (next & (next - 1)) === 0) { this.possible[id] = -1; e!.pend = 0; }
    return e;
  }

  /** Drops expired, settled entries once a quarter of all entries are. */
  private sweep(cutoff: number): void {
    const dead = [...this.m].filter(([, e]) => e.last < cutoff && !e.pend);
    if (dead.length * 4 < this.m.size || dead.length === 0) return;
    for (const [name] of dead) this.m.delete(name);
    this.dropped += dead.length;
  }

  /** Entries as "key code last assumed" lines, sorted; and how many the state's arrays are sized for. */
  state(settledOnly = false): { lines: string[]; sized: number } {
    const kept = [...this.m.values()].filter((e) => !(settledOnly && e.pend));
    return { lines: kept.filter((e) => e.code !== 0).map((e) => `${e.key.join(',')} ${e.code} ${e.last} ${e.assumed}`).sort(), sized: kept.length };
  }

  transfer(): { pending: { keys: number[]; start: number[]; ts: number[]; word: number[] }; ends: { lines: string[]; sized: number }; newest: number } {
    const ids = this.possible.map((p, id) => (p !== -1 ? id : -1)).filter((id) => id >= 0);
    const start = [0], ts: number[] = [], word: number[] = [];
    for (const id of ids) {
      for (const r of this.log) if (r.id === id) { ts.push(r.ts); word.push(r.word); }
      start.push(ts.length);
    }
    return { pending: { keys: ids.flatMap((id) => this.pendKey[id]!), start, ts, word }, ends: this.state(true), newest: this.newest };
  }
}

function lines(st: CtState): { lines: string[]; sized: number } {
  const out: string[] = [];
  for (let j = 0; j < st.count; j++) out.push(`${[...st.keys.subarray(j * KW, j * KW + KW)].join(',')} ${st.code[j]} ${st.last[j]} ${st.assumed[j]}`);
  return { lines: out.sort(), sized: st.keys.length / KW };
}

function plainTransfer(t: CtTransfer): ReturnType<Reference['transfer']> {
  const p = t.pending;
  return { pending: { keys: [...p.keys], start: [...p.start], ts: [...p.ts], word: [...p.word] }, ends: lines(t.ends), newest: t.newest };
}

function mulberry(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Pkt { fam: 4 | 6; proto: number; a: number; b: number; sp: number; dp: number; flags: number; l4flags: number; l4a: number; l4b: number; ts: number }

/**
 * `n` packets between `hosts` clients and a few servers (so keys recur in both
 * directions), mostly TCP with flags drawn from every F.SYN..F.FIN
 * combination, some UDP, GRE, ICMP and ICMPv6 of request, reply and error
 * types, IPv6; fragments, truncated and decoder-INVALID ones; about `window`
 * packets a timeout, with pauses past it and small steps back.
 */
function stream(n: number, hosts: number, timeout: number, window: number, seed: number): Pkt[] {
  const r = mulberry(seed), pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const common = [F.SYN, F.ACK, F.ACK, F.ACK, F.SYN | F.ACK, F.FIN | F.ACK, F.RST, F.RST | F.ACK, F.FIN];
  const out: Pkt[] = [];
  let ts = 1_000;
  for (let i = 0; i < n; i++) {
    ts += r() < 0.5 / window ? timeout * (0.5 + r()) : r() * ((2 * timeout) / window);
    const at = r() < 0.03 ? ts - r() * 3 : ts;
    const fam: 4 | 6 = r() < 0.15 ? 6 : 4;
    const client = 0x0a000000 + Math.floor(r() * hosts), server = 0xc0000200 + Math.floor(r() * 3);
    const up = r() < 0.6, cport = 30000 + Math.floor(r() * 4), sport = pick([80, 443]);
    const x = r();
    const proto = x < 0.75 ? 6 : x < 0.83 ? 17 : x < 0.85 ? 47 : fam === 4 ? 1 : 58;
    let flags = proto === 6 || proto === 17 ? F.PORTS : 0, l4flags = L4.HAS4 | L4.HAS8, l4a = 0, l4b = 0;
    if (proto === 6) flags |= r() < 0.8 ? pick(common) : Math.floor(r() * 16) << 2;
    if (proto === 1 || proto === 58) {
      const type = proto === 1 ? pick([8, 0, 8, 0, 13, 14, 15, 16, 17, 18, 3, 11, 5, 9]) : pick([128, 129, 128, 129, 139, 140, 1, 3, 135]);
      l4a = (type << 24) >>> 0;
      l4b = ((Math.floor(r() * 3) << 16) | Math.floor(r() * 100)) >>> 0;
      if (r() < 0.03) l4flags = 0;
    }
    if (r() < 0.04) { flags |= F.FRAGMENT; if (r() < 0.5) l4flags |= L4.COMPLETES; }
    if (r() < 0.01) flags |= F.TRUNCATED;
    if (r() < 0.01) l4flags |= L4.CT_INVALID;
    const p: Pkt = { fam, proto, a: up ? client : server, b: up ? server : client, sp: up ? cport : sport, dp: up ? sport : cport, flags, l4flags, l4a, l4b, ts: at };
    out.push(p);
    // The same packet again now and then (retransmissions, a key's packets back to back).
    if (r() < 0.05 && i + 1 < n) { out.push({ ...p }); i++; }
  }
  return out;
}

const scratch = createBatch(700);

/**
 * Feeds the stream to `j` in batches of random sizes (a sweep may fall
 * between any two), through one reused batch; returns each packet's
 * CT_INVALID bit as the judge left it.
 */
function feed(j: { judge(b: TupleBatch): void }, ps: Pkt[], seed: number): number[] {
  const r = mulberry(seed), b = scratch, out: number[] = [];
  for (let at = 0; at < ps.length;) {
    const n = Math.min(ps.length - at, 1 + Math.floor(r() * 700));
    for (let i = 0; i < n; i++) {
      const p = ps[at + i]!;
      b.ts[i] = p.ts; b.proto[i] = p.proto; b.family[i] = p.fam; b.sport[i] = p.sp; b.dport[i] = p.dp;
      b.flags[i] = p.flags; b.l4flags[i] = p.l4flags; b.l4a[i] = p.l4a; b.l4b[i] = p.l4b; b.wirelen[i] = 60;
      b.saddr[i] = p.fam === 4 ? p.a : 0; b.daddr[i] = p.fam === 4 ? p.b : 0;
      for (let w = 0; w < 4; w++) {
        b.saddr6[i * 4 + w] = p.fam === 4 ? 0 : w === 0 ? 0x20010db8 : w === 3 ? p.a : 0;
        b.daddr6[i * 4 + w] = p.fam === 4 ? 0 : w === 0 ? 0x20010db8 : w === 3 ? p.b : 0;
      }
    }
    b.count = n;
    j.judge(b);
    for (let i = 0; i < n; i++) out.push(b.l4flags[i]! & L4.CT_INVALID);
    at += n;
  }
  return out;
}

// Sizes: hosts x 4 client ports x 2 server ports x 3 servers x 2 families x protocols; the large cases
// keep thousands of keys live (the IPv4 table grows past its first 4,096 slots while sweeps drop entries).
const CASES = [
  { n: 3_000, hosts: 4, timeout: 20, window: 200, seed: 1 },
  { n: 6_000, hosts: 30, timeout: 10, window: 500, seed: 2 },
  { n: 40_000, hosts: 1_500, timeout: 30, window: 10_000, seed: 3 },
  { n: 40_000, hosts: 800, timeout: 5, window: 8_000, seed: 4 },
];

describe('Judge against a plain Map-and-step reference, over random streams', () => {
  for (const c of CASES) {
    for (const loose of [true, false]) {
      it(`${c.n} packets, ${c.hosts} hosts, timeout ${c.timeout} s, seed ${c.seed}, tcp_loose ${loose ? 1 : 0}: verdicts, stats and state`, () => {
        const ps = stream(c.n, c.hosts, c.timeout, c.window, c.seed);
        const j = new Judge(loose, c.timeout), ref = new Reference(loose, c.timeout);
        const got = feed(j, ps, c.seed), want = feed(ref, ps, c.seed);
        // The stream must exercise both answers.
        expect(want.filter(Boolean).length).toBeGreaterThan(0);
        expect(want.filter((x) => !x).length).toBeGreaterThan(0);
        expect(got).toEqual(want);
        expect(j.stats).toEqual(ref.stats);
        expect(lines(j.state())).toEqual(ref.state());
        // Sweeps dropped entries; the large cases held more than 2,048 at once (the IPv4 table grew past 4,096 slots).
        expect(ref.dropped).toBeGreaterThan(0);
        if (c.n >= 40_000) expect(ref.peak).toBeGreaterThan(2_048);
      });
    }
    it(`${c.n} packets, seed ${c.seed}: a scan's transfer (pending keys, their packets, the settled entries)`, () => {
      const ps = stream(c.n, c.hosts, c.timeout, c.window, c.seed + 100);
      const j = new Judge(true, c.timeout), ref = new Reference(true, c.timeout);
      j.scan(-Infinity); ref.scan();
      expect(feed(j, ps, c.seed)).toEqual(feed(ref, ps, c.seed));
      const want = ref.transfer();
      expect(want.pending.start.length).toBeGreaterThan(1);
      expect(plainTransfer(j.transfer())).toEqual(want);
    });
  }

  it('shares scanned, composed and seeded as engine/run.ts does give the verdicts and stats of one pass', () => {
    for (const c of CASES) {
      const ps = stream(c.n, c.hosts, c.timeout, c.window, c.seed + 200);
      const one = new Judge(true, c.timeout), whole = feed(one, ps, c.seed);
      // Three shares, cut at a third and two thirds.
      const cuts = [0, Math.floor(ps.length / 3), Math.floor((2 * ps.length) / 3), ps.length];
      const shares = [0, 1, 2].map((k) => ps.slice(cuts[k], cuts[k + 1]));
      const transfers = shares.slice(0, -1).map((share, k) => {
        const scan = new Judge(true, c.timeout);
        if (k > 0) scan.scan(-Infinity);
        feed(scan, share, c.seed + k);
        return scan.transfer();
      });
      const chain = new Judge(true, c.timeout), starts: (CtState | null)[] = [null];
      for (const t of transfers) { chain.compose(t); starts.push(chain.state()); }
      const got: number[] = [], stats: JudgeStats = { invalid: 0, assumed: 0, icmpErrors: 0 };
      shares.forEach((share, k) => {
        const j = new Judge(true, c.timeout);
        if (starts[k]) j.seed(starts[k]!);
        got.push(...feed(j, share, c.seed + k));
        stats.invalid += j.stats.invalid; stats.assumed += j.stats.assumed; stats.icmpErrors += j.stats.icmpErrors;
      });
      expect(got, `case ${c.seed}`).toEqual(whole);
      expect(stats, `case ${c.seed}`).toEqual(one.stats);
    }
  });
});

describe('the step table is step', () => {
  it('every kind, state, flag combination and direction judged by a Judge from a seeded state (assumption or not) equals step', () => {
    const o: StepOut = { code: 0, verdict: 0, assumed: false };
    const b = createBatch(1), keyOf = createBatch(1);
    for (const loose of [false, true]) {
      for (const kind of [K.TCP, K.ICMP_REQUEST, K.ICMP_REPLY]) {
        for (let code = 1; code < (kind === K.TCP ? 19 : 3); code++) {
          for (let fb = 0; fb < 16; fb++) {
            for (const d of [0, 1]) {
              for (const fam of [4, 6] as const) for (const was of [0, 1]) {
                // One packet of a connection whose entry the state holds in `code`.
                b.family[0] = fam; b.proto[0] = kind === K.TCP ? 6 : fam === 4 ? 1 : 58; b.ts[0] = 10;
                b.flags[0] = (fb << 2) | F.PORTS; b.l4flags[0] = L4.HAS4 | L4.HAS8;
                if (kind !== K.TCP) b.l4a[0] = ((fam === 4 ? (kind === K.ICMP_REQUEST ? 8 : 0) : kind === K.ICMP_REQUEST ? 128 : 129) << 24) >>> 0;
                const a = 0x0a000001, z = 0x0a000002, src = d === 0 ? a : z, dst = d === 0 ? z : a;
                b.saddr[0] = fam === 4 ? src : 0; b.daddr[0] = fam === 4 ? dst : 0; b.saddr6[3] = fam === 4 ? 0 : src; b.daddr6[3] = fam === 4 ? 0 : dst;
                b.sport[0] = kind === K.TCP ? (d === 0 ? 1000 : 2000) : 0; b.dport[0] = kind === K.TCP ? (d === 0 ? 2000 : 1000) : 0;
                b.count = 1;
                new Uint8Array(keyOf.buffer).set(new Uint8Array(b.buffer));
                keyOf.count = 1;
                const k = new Uint32Array(KW);
                connKey(keyOf, 0, k);
                if (kind !== K.TCP) k[connKeyWords(keyOf, 0) - 1] = fam === 4 ? 8 : 128;
                const j = new Judge(loose, 120);
                j.seed({ count: 1, keys: k, code: Uint8Array.of(code), last: Float64Array.of(9), assumed: Uint8Array.of(was) });
                j.judge(b);
                step(code, kind, wireFlags(b.flags[0]!), d, loose, o);
                const where = `loose ${loose} kind ${kind} code ${code} fb ${fb} d ${d} IPv${fam} assumed before ${was}`;
                expect((b.l4flags[0]! & L4.CT_INVALID) !== 0, where).toBe(o.verdict === V.INVALID);
                // An assumption counts once per entry: not again on an entry that already holds one.
                expect(j.stats.assumed, where).toBe(o.assumed && !was ? 1 : 0);
                const st = j.state();
                expect(st.code[0], where).toBe(o.verdict === V.INVALID ? code : o.code);
                expect(st.assumed[0], where).toBe(o.verdict !== V.INVALID && o.assumed ? 1 : was);
                expect(b.family[0] === FAMILY_IPV6 || st.keys[4] === 0, where).toBe(true);
              }
            }
          }
        }
      }
    }
  });
});

describe('a scan\'s step over a set of states (stepSet)', () => {
  it('equals step from each state of every set a scan can reach, and no reachable set ever settles', () => {
    const o: StepOut = { code: 0, verdict: 0, assumed: false };
    for (const loose of [false, true]) {
      for (const [kinds, start] of [[[K.TCP], (1 << 19) - 1], [[K.ICMP_REQUEST, K.ICMP_REPLY], 0b111]] as const) {
        // Every set reachable from a pending key's start (Judge.follow), breadth first.
        const seen = new Set<number>([start]), todo = [start];
        let settling = 0, checked = 0;
        while (todo.length > 0) {
          const was = todo.pop()! | 1;
          for (const kind of kinds) {
            for (let fb = 0; fb < 16; fb++) {
              for (const d of [0, 1]) {
                let next = 0, invalid = false;
                for (let c = 0; c < 19; c++) {
                  if (!(was & (1 << c))) continue;
                  step(c, kind, wireFlags(fb << 2), d, loose, o);
                  if (o.verdict === V.INVALID) { invalid = true; next |= 1 << c; } else next |= 1 << o.code;
                }
                const x = stepSet(loose, was, kind, fb, d);
                checked++;
                if ((x & SET_NEXT) !== next || ((x & SET_INVALID) !== 0) !== invalid) {
                  expect({ loose, kind, was, fb, d, next: x & SET_NEXT, invalid: (x & SET_INVALID) !== 0 }).toEqual({ loose, kind, was, fb, d, next, invalid });
                }
                if (!invalid && (next & (next - 1)) === 0) settling++;
                else if (!seen.has(next)) { seen.add(next); todo.push(next); }
              }
            }
          }
          expect(seen.size).toBeLessThan(100_000);
        }
        expect(checked).toBeGreaterThan(32);
        // A finding, not a rule: the fresh start every set keeps (the earlier entry may have expired) is
        // INVALID for all but a SYN or a loose ACK, and sIG leaves the other states as they were, so no key
        // a scan follows settles: each one's packets are all logged, to the end of the share.
        expect(settling).toBe(0);
      }
    }
  });
});
