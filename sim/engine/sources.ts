/** Opens the PacketSource a SourceSpec names (inside a worker or in-process), and splits inputs into shares. */
import { UsageError } from '../cli/errors.ts';
import { openCsvSource, type SyncPacketSource } from '../traffic/csv-source.ts';
import type { SourceSpec } from './task.ts';

export function openSource(spec: SourceSpec): SyncPacketSource {
  switch (spec.kind) {
    case 'csv':
      return openCsvSource(spec.path);
    default:
      throw new UsageError(`input kind '${spec.kind}' is not available yet`);
  }
}

/** Splits one input into at most `parts` shares that workers read on their own. */
export function planSourceShares(spec: SourceSpec, parts: number): SourceSpec[] {
  switch (spec.kind) {
    case 'synthetic':
      return Array.from({ length: parts }, (_, index) => ({ ...spec, share: { index, count: parts } }));
    default:
      return [spec];
  }
}
