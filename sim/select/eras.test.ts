/** Era boundaries, byte order and protocol rules through the selectors (kernel-semantics §0, §4.1, §5, §6, §8). */
import { describe, expect, it } from 'vitest';
import { buildSelector } from './build.ts';
import { resolveProfile } from './profile.ts';
import { NO_BUCKET, UNKNOWN_BUCKET, type SelectorSpec } from './selector.ts';
import { createBatch, F, L4 } from '../traffic/batch.ts';
import { writeTupleV4, writeTupleV6 } from '../traffic/tuple.ts';
import { parseIPv4, parseIPv6 } from '../core/addr.ts';

type Tuple = [proto: number, saddr: number, sport: number, daddr: number, dport: number];
function nodes(spec: SelectorSpec, tuples: Tuple[]): number[] {
  const sel = buildSelector(spec);
  const b = createBatch(tuples.length);
  tuples.forEach((t, i) => writeTupleV4(b, i, ...t));
  b.count = tuples.length;
  const out = new Int32Array(tuples.length);
  sel.select(b, out);
  return [...out].map((x) => (x < 0 ? x : x + sel.offset));
}
const cip = (kernel: string, hashmode: 'sourceip' | 'sourceip-sourceport' | 'sourceip-sourceport-destport', totalNodes: number, endian: 'little' | 'big' = 'little', hashInit = 0): SelectorSpec =>
  ({ backend: 'clusterip', hashmode, totalNodes, hashInit, kernel, endian });
const T10 = 0x0a000001;

describe('kernel profiles', () => {
  it('picks the jhash flavour and CLUSTERIP era from the version', () => {
    expect(resolveProfile('2.6.36').jhash).toBe('lookup2');
    expect(resolveProfile('2.6.37').jhash).toBe('lookup3-transitional');
    expect(resolveProfile('4.0.9').jhash).toBe('lookup3-transitional');
    expect(resolveProfile('4.1').jhash).toBe('lookup3');
    expect(resolveProfile('2.6.12').clusterip?.id).toBe('A');
    expect(resolveProfile('2.6.16').clusterip?.id).toBe("A'");
    expect(resolveProfile('2.6.22').clusterip?.id).toBe('B');
    expect(resolveProfile('2.6.25').clusterip?.id).toBe('C');
    expect(resolveProfile('2.6.37').clusterip?.id).toBe('D');
    expect(resolveProfile('6.2.16').clusterip?.id).toBe('D');
    expect(resolveProfile('6.3').clusterip).toBeNull();
    expect(resolveProfile('4.19.0-25-amd64').kernel.minor).toBe(19);
  });
  it('refuses CLUSTERIP from 6.3 on and names the successors', () => {
    expect(() => buildSelector(cip('6.3', 'sourceip', 2))).toThrow(/removed in Linux 6\.3.*xt_cluster.*nft/s);
    expect(() => buildSelector(cip('2.6.9', 'sourceip', 2))).toThrow(/2\.6\.10/);
  });
  it('marks every fact of a 6.1 little-endian profile as measured, and a 2.6.20 one as not', () => {
    expect(buildSelector(cip('6.1', 'sourceip-sourceport', 4)).facts.every((f) => f.evidence.startsWith('measured'))).toBe(true);
    const old = buildSelector(cip('2.6.20', 'sourceip-sourceport', 4)).facts;
    expect(old.some((f) => f.evidence === 'unverified')).toBe(true);
    // Big-endian: the 4.1+ code was measured on Debian's 6.1.176 s390x kernel (../shared/vectors/s390x/); older eras were not.
    const be = buildSelector(cip('6.1', 'sourceip-sourceport', 4, 'big')).facts;
    expect(be.every((f) => f.evidence.startsWith('measured'))).toBe(true);
    expect(be.some((f) => f.evidence === 'measured 6.1.176 s390x' && /big-endian/.test(f.note))).toBe(true);
    expect(buildSelector(cip('3.10', 'sourceip-sourceport', 4, 'big')).facts.some((f) => f.evidence === 'source' && /big-endian/.test(f.note))).toBe(true);
    const v6 = buildSelector({ backend: 'nft', expr: 'jhash ip6 saddr mod 4 seed 0x1', kernel: '6.1', endian: 'big' }).facts;
    expect(v6.some((f) => f.evidence === 'source' && /IPv6/.test(f.note))).toBe(true);
  });
});

describe('CLUSTERIP across eras (anchor A1, A2)', () => {
  const a1: Tuple = [6, T10, 1, 0xc000020a, 80];
  it('A1 sourceip 10.0.0.1, N=16 in every era', () => {
    expect(nodes(cip('6.1', 'sourceip', 16), [a1])).toEqual([4]);
    expect(nodes(cip('3.10', 'sourceip', 16), [a1])).toEqual([13]);
    expect(nodes(cip('2.6.32', 'sourceip', 16), [a1])).toEqual([7]);
    expect(nodes(cip('2.6.22', 'sourceip', 16), [a1])).toEqual([13]);
    expect(nodes(cip('2.6.11', 'sourceip', 16), [a1])).toEqual([13]);
  });
  it('A3 sourceip-sourceport-destport, TCP 10.0.0.1:256 -> :80, N=3', () => {
    const t: Tuple = [6, T10, 256, 0xc000020a, 80];
    expect(nodes(cip('6.1', 'sourceip-sourceport-destport', 3), [t])).toEqual([3]);
    expect(nodes(cip('6.1', 'sourceip-sourceport-destport', 3, 'big'), [t])).toEqual([3]);
    expect(nodes(cip('3.2', 'sourceip-sourceport-destport', 3), [t])).toEqual([3]);
    expect(nodes(cip('2.6.30', 'sourceip-sourceport-destport', 3), [t])).toEqual([1]);
    expect(nodes(cip('2.6.11', 'sourceip-sourceport-destport', 3), [t])).toEqual([2]);
  });
});

describe('CPU byte order', () => {
  it('leaves sourceip unchanged and changes the port modes (A4)', () => {
    const rnd = ((s) => () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0)))(99);
    const ts: Tuple[] = Array.from({ length: 500 }, () => [6, rnd(), rnd() & 0xffff, 0xc000020a, rnd() & 0xffff] as Tuple);
    expect(nodes(cip('6.1', 'sourceip', 7, 'big'), ts)).toEqual(nodes(cip('6.1', 'sourceip', 7), ts));
    const le = nodes(cip('6.1', 'sourceip-sourceport', 7), ts), be = nodes(cip('6.1', 'sourceip-sourceport', 7, 'big'), ts);
    expect(le.filter((x, i) => x !== be[i]).length).toBeGreaterThan(300);
    // Era A used ntohs(): CPU-independent.
    expect(nodes(cip('2.6.11', 'sourceip-sourceport', 7, 'big'), ts)).toEqual(nodes(cip('2.6.11', 'sourceip-sourceport', 7), ts));
    expect(nodes(cip('6.1', 'sourceip-sourceport', 2), [[6, T10, 12345, 1, 80]])).toEqual([1]);
    expect(nodes(cip('6.1', 'sourceip-sourceport', 2, 'big'), [[6, T10, 12345, 1, 80]])).toEqual([2]);
  });
  it('xt_cluster depends on byte order (A8), nft keys <= 12 bytes do not', () => {
    const xt = (kernel: string, endian: 'little' | 'big'): SelectorSpec => ({ backend: 'xt_cluster', totalNodes: 2, hashSeed: 0xdeadbeef, kernel, endian });
    expect(nodes(xt('6.18', 'little'), [[6, T10, 1, 2, 3]])).toEqual([1]);
    expect(nodes(xt('3.10', 'little'), [[6, T10, 1, 2, 3]])).toEqual([2]);
    const ts: Tuple[] = Array.from({ length: 300 }, (_, i) => [6, Math.imul(i + 1, 0x9e3779b1) >>> 0, i, 0xc000020a, 80] as Tuple);
    const nft = (expr: string, endian: 'little' | 'big'): SelectorSpec => ({ backend: 'nft', expr, kernel: '6.18', endian });
    const short = 'jhash ip saddr . tcp sport . tcp dport mod 8 seed 0x3';
    expect(nodes(nft(short, 'big'), ts)).toEqual(nodes(nft(short, 'little'), ts));
    const long = 'jhash ip saddr . ip daddr . tcp sport . tcp dport mod 8 seed 0x3';
    expect(nodes(nft(long, 'big'), ts)).not.toEqual(nodes(nft(long, 'little'), ts));
    expect(nodes(xt('6.18', 'big'), ts)).not.toEqual(nodes(xt('6.18', 'little'), ts));
  });
});

describe('which protocols carry ports, per era', () => {
  const icmp = (id: number, seq: number): Tuple => [1, T10, id, 0xc000020a, seq];
  it('era D hashes ICMP with ports 0/0; eras B/C hash type/code and checksum; era A the echo id', () => {
    const ids: Tuple[] = Array.from({ length: 40 }, (_, i) => icmp(i * 977, i));
    const d = nodes(cip('6.1', 'sourceip-sourceport-destport', 16), ids);
    expect(new Set(d).size).toBe(1);
    expect(new Set(nodes(cip('2.6.30', 'sourceip-sourceport-destport', 16), ids)).size).toBeGreaterThan(1);
    expect(new Set(nodes(cip('2.6.11', 'sourceip-sourceport', 16), ids)).size).toBeGreaterThan(1);
  });
  it('era D hashes the ESP and AH SPI; era C does not', () => {
    const spis: Tuple[] = Array.from({ length: 40 }, (_, i) => [i % 2 ? 50 : 51, T10, i * 1013, 0xc000020a, i * 7] as Tuple);
    expect(new Set(nodes(cip('6.1', 'sourceip-sourceport', 16), spis)).size).toBeGreaterThan(1);
    expect(new Set(nodes(cip('2.6.30', 'sourceip-sourceport', 16), spis)).size).toBe(1);
  });
  it('a capture that cut the port bytes gives UNKNOWN, a genuinely short packet ports 0/0 (era D)', () => {
    const sel = buildSelector(cip('6.1', 'sourceip-sourceport', 4));
    const b = createBatch(3);
    for (let i = 0; i < 3; i++) writeTupleV4(b, i, 6, T10, 0, 2, 0);
    b.l4flags[1] = 0; b.flags[1] = F.TRUNCATED;
    b.l4flags[2] = 0;
    b.count = 3;
    const out = new Int32Array(3);
    sel.select(b, out);
    expect(out[1]).toBe(UNKNOWN_BUCKET);
    expect(out[2]).toBe(out[0]);
    b.l4flags[0] = L4.HAS4 | L4.CT_INVALID;
    sel.select(b, out);
    expect(out[0]).toBe(NO_BUCKET);
  });
});

describe('nft', () => {
  const nft = (expr: string): SelectorSpec => ({ backend: 'nft', expr, kernel: '6.18', endian: 'little' });
  it('pads every field to 4 bytes (A11) and adds the offset', () => {
    expect(nodes(nft('jhash ip saddr . tcp sport mod 4 seed 0x0'), [[6, T10, 12345, 1, 1]])).toEqual([3]);
    expect(nodes(nft('jhash ip saddr . tcp sport mod 4 seed 0x0 offset 100'), [[6, T10, 12345, 1, 1]])).toEqual([103]);
  });
  it('a tcp key does not fire for UDP; th reads any protocol', () => {
    expect(nodes(nft('jhash ip saddr . tcp sport mod 4 seed 1'), [[17, T10, 1, 2, 3]])).toEqual([NO_BUCKET]);
    expect(nodes(nft('jhash ip saddr . th sport mod 4 seed 1'), [[17, T10, 1, 2, 3]])[0]).toBeGreaterThanOrEqual(0);
  });
  it('nft ip6 saddr hashes all 16 bytes (A13); xt_cluster IPv6 only the first address word', () => {
    const b = createBatch(3);
    writeTupleV6(b, 0, 6, parseIPv6('2001:db8::1')!, 1, parseIPv6('2001:db8::2')!, 80);
    writeTupleV6(b, 1, 6, parseIPv6('2001:db8:ffff:1234::99')!, 1, parseIPv6('2001:db8::2')!, 80);
    writeTupleV4(b, 2, 6, parseIPv4('32.1.13.184')!, 1, 1, 80);
    b.count = 3;
    const o1 = new Int32Array(3), o2 = new Int32Array(3);
    buildSelector(nft('jhash ip6 saddr mod 1000 seed 0x0')).select(b, o1);
    buildSelector({ backend: 'xt_cluster', totalNodes: 32, hashSeed: 0, kernel: '6.18', endian: 'little' }).select(b, o2);
    expect(o1[0]).toBe(Math.floor((0x0e5b0adb * 1000) / 2 ** 32));
    expect(o1[1]).not.toBe(o1[0]);
    // xt_cluster: jhash2(addr, NF_CT_TUPLE_L3SIZE / 4 = 1, seed), i.e. the IPv4 hash of 32.1.13.184 (= 2001:0db8),
    // whatever the other 96 bits (measured 6.18.44 in kernel-glue/ipv6.kernel.test.ts).
    expect([o2[0], o2[1]]).toEqual([o2[2], o2[2]]);
  });
  it('refuses what the kernel refuses', () => {
    expect(() => buildSelector(nft('jhash ip saddr mod 0'))).toThrow(/ERANGE/);
    expect(() => buildSelector(nft('jhash ip saddr mod 4 offset 4294967293'))).toThrow(/EOVERFLOW/);
    expect(() => buildSelector(nft('jhash ip saddr seed 1'))).toThrow(/expected 'mod N'/);
    expect(() => buildSelector(nft('jhash ip saddr . ip6 daddr mod 2'))).toThrow(/mix IPv4 and IPv6/);
    expect(buildSelector(nft('jhash ip saddr mod 4')).facts.some((f) => /random seed/.test(f.note))).toBe(true);
  });
  it('symhash stand-in is symmetric and uniform, and says it is not predictable', () => {
    const sel = buildSelector(nft('symhash mod 8'));
    expect(sel.predictable).toBe(false);
    const n = 16000;
    const b = createBatch(2 * n);
    let s = 17;
    const r = (): number => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
    for (let i = 0; i < n; i++) {
      const a = r(), c = r(), p = r() & 0xffff, q = r() & 0xffff;
      writeTupleV4(b, 2 * i, 6, a, p, c, q);
      writeTupleV4(b, 2 * i + 1, 6, c, q, a, p);
    }
    b.count = 2 * n;
    const out = new Int32Array(2 * n);
    sel.select(b, out);
    const counts = new Array<number>(8).fill(0);
    for (let i = 0; i < n; i++) {
      expect(out[2 * i]).toBe(out[2 * i + 1]);
      counts[out[2 * i]!]! += 1;
    }
    const e = n / 8;
    const chi2 = counts.reduce((x, c) => x + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(24.3); // p = 0.001 critical value, df 7
  });
});
