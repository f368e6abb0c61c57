/** Opens the PacketInput a InputSpec names (inside a worker or in-process), and splits inputs into shares. */
import { openCsvInput } from '../traffic/csv-input.ts';
import { openCapture } from '../traffic/capture.ts';
import { planShares } from '../traffic/share-plan.ts';
import { openSynthetic } from '../traffic/synthetic.ts';
import type { PacketInput } from '../traffic/input.ts';
import type { InputSpec } from './task.ts';

export function openInput(spec: InputSpec): PacketInput {
  switch (spec.kind) {
    case 'csv':
      return openCsvInput(spec.path);
    case 'pcap':
      return openCapture(spec.path, { start: spec.start, end: spec.end, lenient: spec.lenient, limit: spec.limit, from: spec.from, to: spec.to, noDefrag: spec.noDefrag, carry: spec.carry });
    case 'synthetic':
      return openSynthetic(spec.name, { ...spec.params, seed: spec.seed, packets: spec.packets, share: spec.share });
  }
}

/**
 * Splits one input into at most `parts` shares that workers read on their own
 * (DESIGN.md: each worker reads its own byte range of a capture; a synthetic
 * scenario deals whole flows to shares). `weights`: a capture's byte ranges
 * in these proportions (traffic/share-plan.ts); the other kinds split evenly.
 */
export function planInputShares(spec: InputSpec, parts: number, weights?: readonly number[]): InputSpec[] {
  switch (spec.kind) {
    case 'synthetic':
      return Array.from({ length: parts }, (_, index) => ({ ...spec, share: { index, count: parts } }));
    case 'pcap':
      // A --limit counts packets from the start of the file, so it cannot be split.
      if (spec.limit !== undefined || parts <= 1) return [spec];
      return planShares(spec.path, parts, weights).map((r) => ({ ...spec, start: r.start, end: r.end }));
    case 'csv':
      return [spec];
  }
}
