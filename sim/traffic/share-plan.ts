/**
 * Share planning: where workers may start reading one capture. Each worker
 * reads its own byte range (DESIGN.md: a main thread relaying bytes to two
 * workers was slower than one thread on two cores), so the ranges must begin
 * on record boundaries, found by resynchronising on plausible record headers.
 */
import { CaptureInput } from './capture.ts';
import { BOM } from './capture-format.ts';
import { openByteInput } from './byte-input.ts';

/**
 * Splits a capture into up to `parts` record-aligned byte ranges that workers
 * can read independently: jump to an even split point and resynchronise on a
 * chain of plausible record headers (well under a millisecond; walking every
 * header would read the whole file). A .gz file or stdin is one range. A
 * pcapng file with several sections is split only at section starts, because
 * a share must start where its interfaces are known.
 *
 * `weights` (one per part, any positive scale) cuts the ranges in those
 * proportions of the file's bytes instead of evenly: engine/share-weights.ts
 * gives a run's later shares less, because their worker first reads the
 * earlier ones for the conntrack state at their start.
 */
export function planShares(path: string, parts: number, weights?: readonly number[]): { start: number; end: number }[] {
  if (weights && weights.length !== parts) throw new RangeError(`planShares: ${weights.length} weights for ${parts} parts`);
  const total = weights ? weights.reduce((a, b) => a + b, 0) : parts;
  // Where cut k (1 <= k < parts) falls, as a fraction of the file.
  const at = (k: number): number => {
    if (!weights) return k / parts;
    let w = 0;
    for (let j = 0; j < k; j++) w += weights[j]!;
    return w / total;
  };
  const probe = new CaptureInput(path, {});
  try {
    const inp = probe.input;
    const size = inp.size;
    if (size < 0 || inp.gzip) return [{ start: 0, end: Number.MAX_SAFE_INTEGER }];
    const first = probe.isPcapng ? 0 : 24;
    if (parts <= 1 || size - first < 64 * 1024 * parts) return [{ start: first, end: size }];
    let candidates: number[];
    if (probe.isPcapng) {
      const shbs = findSectionStarts(path, size);
      if (shbs.length > 1) {
        candidates = shbs.slice(1);
        const want: number[] = [];
        for (let k = 1; k < parts; k++) {
          const target = size * at(k);
          let best = candidates[0]!;
          for (const c of candidates) if (Math.abs(c - target) < Math.abs(best - target)) best = c;
          want.push(best);
        }
        return toRanges(first, size, want);
      }
    }
    const cuts: number[] = [];
    for (let k = 1; k < parts; k++) {
      let off = Math.floor(size * at(k));
      if (probe.isPcapng) off &= ~3;
      const found = resyncFrom(path, off, probe.isPcapng);
      if (found >= 0) cuts.push(found);
    }
    return toRanges(first, size, cuts);
  } finally {
    probe.close();
  }
}

function toRanges(first: number, size: number, cuts: number[]): { start: number; end: number }[] {
  const pts = [...new Set(cuts.filter((c) => c > first && c < size))].sort((a, b) => a - b);
  const out: { start: number; end: number }[] = [];
  let s = first;
  for (const c of pts) { out.push({ start: s, end: c }); s = c; }
  out.push({ start: s, end: size });
  return out;
}

function resyncFrom(path: string, at: number, ng: boolean): number {
  const src = new CaptureInput(path, { start: at, lenient: true });
  try {
    const inp = src.input;
    inp.seek(at);
    const limit = at + 32 * 1024 * 1024;
    while (inp.offset < limit) {
      if (inp.ensure(16) < 16) return -1;
      if (src.chainAt(8)) return inp.offset;
      inp.pos += ng ? 4 : 1;
    }
    return -1;
  } finally {
    src.close();
  }
}

/** Offsets of every pcapng section header block (4-byte aligned, byte-order magic checked). */
function findSectionStarts(path: string, size: number): number[] {
  const inp = openByteInput(path, 0);
  const out: number[] = [];
  const magic = Buffer.from([0x0a, 0x0d, 0x0d, 0x0a]);
  try {
    const chunk = 4 << 20;
    for (let off = 0; off < size; off += chunk) {
      const data = Buffer.from(inp.peek(off, Math.min(chunk + 12, size - off)));
      let i = data.indexOf(magic);
      while (i >= 0 && i < chunk) {
        const at = off + i;
        if ((at & 3) === 0 && i + 12 <= data.length) {
          const bom = data.readUInt32LE(i + 8);
          if (bom === BOM || bom === 0x4d3c2b1a) out.push(at);
        }
        i = data.indexOf(magic, i + 1);
      }
    }
  } finally {
    inp.close();
  }
  return out;
}
