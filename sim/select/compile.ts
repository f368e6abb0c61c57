/**
 * Per-rule loop compilation for the selectors' fast paths.
 *
 * Why: V8 optimises a function once per source function, not per closure. A
 * loop shared by every rule (a closure over the rule's constants) is tuned
 * for the first rule it meets and slowed by the next (measured in the hash
 * bench: nft `jhash ip saddr` fell from 158 to 62 M/s once a second nft rule
 * ran). A loop compiled per rule with its constants written in is
 * monomorphic and lets V8 fold them (about 2x on the 12- and 16-byte nft keys).
 *
 * Safety: the source is assembled here from fixed templates and numbers
 * (validated integers); no user text ever reaches it.
 * Every fast path is held against the general code by the golden vectors and
 * by sim/select/fast-paths.test.ts on packets with every flag combination.
 */
import type { Selector } from './selector.ts';
import { multiplyShift, MULSHIFT_FAST_MAX } from '../hash/reduce.ts';

/** lookup3 `final()` on locals a, bb, c (kernel-semantics §2.2). */
export const FINAL3 = `
    c ^= bb; c = (c - ((bb << 14) | (bb >>> 18))) | 0;
    a ^= c; a = (a - ((c << 11) | (c >>> 21))) | 0;
    bb ^= a; bb = (bb - ((a << 25) | (a >>> 7))) | 0;
    c ^= bb; c = (c - ((bb << 16) | (bb >>> 16))) | 0;
    a ^= c; a = (a - ((c << 4) | (c >>> 28))) | 0;
    bb ^= a; bb = (bb - ((a << 14) | (a >>> 18))) | 0;
    c ^= bb; c = (c - ((bb << 24) | (bb >>> 8))) | 0;`;

/** lookup3 `mix()` on locals a, bb, c (kernel-semantics §2.2). */
export const MIX3 = `
    a = (a - c) | 0; a ^= (c << 4) | (c >>> 28); c = (c + bb) | 0;
    bb = (bb - a) | 0; bb ^= (a << 6) | (a >>> 26); a = (a + c) | 0;
    c = (c - bb) | 0; c ^= (bb << 8) | (bb >>> 24); bb = (bb + a) | 0;
    a = (a - c) | 0; a ^= (c << 16) | (c >>> 16); c = (c + bb) | 0;
    bb = (bb - a) | 0; bb ^= (a << 19) | (a >>> 13); a = (a + c) | 0;
    c = (c - bb) | 0; c ^= (bb << 4) | (bb >>> 28); bb = (bb + a) | 0;`;

/** bswap32 of the expression in `v` (a simple name), as int32. */
export const bswap32Src = (v: string): string => `((${v} << 24) | ((${v} & 0xff00) << 8) | ((${v} >>> 8) & 0xff00) | (${v} >>> 24))`;

/**
 * reciprocal_scale(c, n) (kernel-semantics §3) as source. For n < 2^16 in
 * 32-bit integer steps: with c = hi * 2^16 + lo, floor(c * n / 2^32) =
 * (hi * n + floor(lo * n / 2^16)) >>> 16, and the sum stays below 2^32.
 * Larger n: exact float64 product while n < 2^21, the split form beyond.
 */
export function reduceSrc(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`bucket count ${n}`);
  if (n < 65536) return `((Math.imul(c >>> 16, ${n}) + (Math.imul(c & 0xffff, ${n}) >>> 16)) >>> 16)`;
  if (n < MULSHIFT_FAST_MAX) return `((((c >>> 0) * ${n}) / 4294967296) | 0)`;
  return `multiplyShift(c >>> 0, ${n})`;
}

/**
 * Wraps a loop body into a `select(b, out, start, end)` function. `lanes`
 * names the batch fields the body reads (hoisted out of the loop); the body
 * runs per packet `i`, `continue`s after writing a no-answer, and leaves the
 * hash in `c`, which the wrapper reduces to `n` buckets.
 */
export function compileSelect(name: string, lanes: readonly string[], body: string, n: number, extra: Record<string, unknown> = {}): Selector['select'] {
  if (!/^[A-Za-z_]\w*$/.test(name) || !lanes.every((l) => /^[a-z][a-z0-9]*$/.test(l))) throw new Error('compileSelect: bad identifier');
  const names = Object.keys(extra);
  const src = `
return function ${name}(b, out, start, end) {
  if (start === undefined) start = 0;
  if (end === undefined) end = b.count;
  ${lanes.map((l) => `const ${l} = b.${l};`).join(' ')}
  for (let i = start; i < end; i++) {
    ${body}
    out[i] = ${reduceSrc(n)};
  }
};`;
  const values = names.map((k) => extra[k]);
  const key = `${names.join(',')}\n${src}`;
  const hit = compiled.get(key);
  if (hit && hit.values.every((v, j) => v === values[j])) return hit.fn;
  const fn = new Function('multiplyShift', ...names, src)(multiplyShift, ...values) as Selector['select'];
  if (compiled.size >= COMPILED_MAX) compiled.clear();
  compiled.set(key, { values, fn });
  return fn;
}

/**
 * Loops already compiled in this thread, by source (and the same `extra`
 * values). A select function keeps no state between calls, so one rule's loop
 * serves every share that thread runs: without this, each share compiled (and
 * warmed up) its own copies of the 32 band-seed loops again, 0.7 of 10.6 s
 * over 1,000 rotated files of 500 packets (issue 21's in-run merge case).
 */
const compiled = new Map<string, { values: unknown[]; fn: Selector['select'] }>();
/** Bound on the cache (a run uses a few configurations x 33 seeds). */
const COMPILED_MAX = 1024;
