/**
 * The compiled fast paths (compile.ts) and the WebAssembly build (wasm.ts)
 * must give exactly what the general selector code gives, on every kind of packet, not only on the tuples the
 * golden vectors cover: IPv6 and non-IP packets, conntrack-INVALID, reply
 * direction, truncated captures, short packets, AH/ESP/ICMP/GRE, both byte
 * orders, small and huge bucket counts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildWasm } from './wasm/build.ts';
import { wasmModule, type Engine } from './wasm.ts';
import { batchHandle, batchMemory, BYTES_PER_PACKET, createBatch, F, L4, viewBatch, type TupleBatch } from '../traffic/batch.ts';
import { writeTupleV4, writeTupleV6 } from '../traffic/tuple.ts';
import { randomStream as rng } from '../core/prng.ts';
import { clusteripSelector } from './clusterip.ts';
import { xtClusterSelector } from './xt-cluster.ts';
import { nftSelector } from './nft.ts';
import { CLUSTERIP_MODES, type SelectorSpec } from './selector.ts';

const N = 20000;

/** Packets with every flag combination the selectors branch on. */
function mixedBatch(seed: number): TupleBatch {
  const r = rng(seed);
  const b = createBatch(N);
  const protos = [6, 6, 6, 17, 17, 1, 50, 51, 47, 132, 136, 33, 4, 58];
  const u32 = (): number => Math.floor(r() * 4294967296);
  for (let i = 0; i < N; i++) {
    const proto = protos[Math.floor(r() * protos.length)]!;
    const v6 = r() < 0.1;
    if (v6) writeTupleV6(b, i, proto, [u32(), u32(), u32(), u32()], Math.floor(r() * 65536), [u32(), u32(), u32(), u32()], Math.floor(r() * 65536));
    else writeTupleV4(b, i, proto, u32(), Math.floor(r() * 65536), u32(), Math.floor(r() * 65536));
    if (r() < 0.03) b.family[i] = 0; // neither IPv4 nor IPv6 (ARP, say)
    if (r() < 0.05) b.l4flags[i]! |= L4.CT_INVALID;
    if (r() < 0.2) b.flags[i]! |= F.REPLY;
    if (r() < 0.08) b.l4flags[i]! &= ~L4.HAS8;
    if (r() < 0.08) b.l4flags[i]! &= ~(L4.HAS4 | L4.HAS8);
    if (r() < 0.5 && (b.l4flags[i]! & L4.HAS8) === 0) b.flags[i]! |= F.TRUNCATED;
  }
  b.count = N;
  return b;
}

/** The batch copied into a bare SharedArrayBuffer (not WebAssembly memory). */
function inSab(b: TupleBatch): TupleBatch {
  const buf = new SharedArrayBuffer(BYTES_PER_PACKET * b.capacity);
  new Uint8Array(buf).set(new Uint8Array(b.buffer, 0, BYTES_PER_PACKET * b.capacity));
  const c = viewBatch(buf, b.capacity, b.count);
  expect(batchMemory(c.buffer)).toBeUndefined();
  return c;
}

function same(fast: { select: (b: TupleBatch, o: Int32Array, s?: number, e?: number) => void }, ref: typeof fast, b: TupleBatch, what: string): void {
  const o1 = new Int32Array(N), o2 = new Int32Array(N);
  fast.select(b, o1);
  ref.select(b, o2);
  let bad = -1;
  for (let i = 0; i < N && bad < 0; i++) if (o1[i] !== o2[i]) bad = i;
  expect(bad, `${what}: packet ${bad} fast ${o1[bad]} general ${o2[bad]}`).toBe(-1);
  // A sub-range touches only that range.
  const o3 = new Int32Array(N).fill(12345);
  fast.select(b, o3, 100, 200);
  expect(o3[99]).toBe(12345);
  expect(o3[200]).toBe(12345);
  expect(Array.from(o3.subarray(100, 200))).toEqual(Array.from(o2.subarray(100, 200)));
}

for (const mode of ['ts', 'wasm', 'wasm-copy'] as const) describe(`${mode} fast paths equal the general selector code`, () => {
  const engine: Engine = mode === 'ts' ? 'ts' : 'wasm';
  // wasm-copy: the same batches in bare SharedArrayBuffers, which the wasm path copies chunk by chunk.
  const batches = [mixedBatch(1), mixedBatch(2)].map((b) => (mode === 'wasm-copy' ? inSab(b) : b));
  beforeAll(() => {
    if (engine !== 'wasm') return;
    expect(buildWasm().built).toBe(true);
    expect(wasmModule()).not.toBeNull();
  });

  it('CLUSTERIP era D, every mode, both byte orders, 0-16 nodes', () => {
    let cases = 0;
    for (const hashmode of CLUSTERIP_MODES) for (const endian of ['little', 'big'] as const) for (const totalNodes of [0, 1, 2, 5, 16]) {
      const spec = { backend: 'clusterip', hashmode, totalNodes, hashInit: 0x9abcdef0, kernel: '6.1', endian } as const;
      for (const b of batches) same(clusteripSelector(spec, { engine }), clusteripSelector(spec, { reference: true }), b, JSON.stringify(spec));
      cases++;
    }
    expect(cases).toBe(30);
  });

  it('xt_cluster 4.1+, both byte orders, 1-32 nodes', () => {
    for (const endian of ['little', 'big'] as const) for (const totalNodes of [1, 3, 7, 32]) {
      const spec = { backend: 'xt_cluster', totalNodes, hashSeed: 0xdeadbeef, kernel: '6.18', endian } as const;
      for (const b of batches) same(xtClusterSelector(spec, { engine }), xtClusterSelector(spec, { reference: true }), b, JSON.stringify(spec));
    }
  });

  it('nft jhash over IPv4 keys up to 16 bytes, ct keys, th/udp ports, large mod', () => {
    const keys = [
      'ip saddr', 'ip daddr', 'ct original ip saddr', 'ct original ip daddr', 'tcp sport', 'th dport',
      'ip saddr . tcp sport', 'ip saddr . udp dport', 'ip saddr . tcp sport . tcp dport', 'ip daddr . th sport . th dport',
      'ip saddr . ip daddr . tcp sport . tcp dport', 'ct original ip saddr . ct original ip daddr . th sport . th dport',
      'ip saddr . ip daddr', 'tcp dport . ip saddr . ip daddr',
    ];
    let cases = 0;
    for (const key of keys) for (const mod of [1, 7, 65535, 65536, 3000000, 2147483648]) for (const endian of ['little', 'big'] as const) {
      const spec: Extract<SelectorSpec, { backend: 'nft' }> = { backend: 'nft', expr: `jhash ${key} mod ${mod} seed 0x2a offset 3`, kernel: '6.18', endian };
      for (const b of batches) same(nftSelector(spec, { engine }), nftSelector(spec, { reference: true }), b, spec.expr + ' ' + endian);
      cases++;
    }
    expect(cases).toBe(keys.length * 12);
  });
});

describe('a batch handle carries its WebAssembly memory', () => {
  it('a batch re-viewed from a cloned handle is read in place and gives the same answers', () => {
    expect(buildWasm().built).toBe(true);
    const b = mixedBatch(3);
    const h = structuredClone(batchHandle(b));
    expect(h.memory).toBeDefined();
    const v = viewBatch(h.buffer, h.capacity, h.count, h.memory);
    expect(batchMemory(v.buffer)).toBe(h.memory);
    const spec = { backend: 'xt_cluster', totalNodes: 5, hashSeed: 7, kernel: '6.18', endian: 'little' } as const;
    same(xtClusterSelector(spec, { engine: 'wasm' }), xtClusterSelector(spec, { reference: true }), v, 'cloned handle');
  });
});
