/**
 * CSV tuples as a synchronous PacketInput (for workers): the file is read
 * once; tuple files are small next to captures.
 */
import { readTextFile } from '../core/errors.ts';
import type { TupleBatch } from './batch.ts';
import { parseTupleFields, writeParsed } from './csv-tuples.ts';
import { newStats, type PacketInput } from './input.ts';

export function openCsvInput(path: string): PacketInput {
  const text = readTextFile(path);
  const lines = text.split('\n');
  let ln = 0;
  const stats = newStats();
  return {
    stats,
    close() {},
    fill(b: TupleBatch): number {
      let n = 0;
      while (n < b.capacity && ln < lines.length) {
        const line = lines[ln++]!.trim();
        if (line === '' || line.startsWith('#') || (ln === 1 && /^proto\s*,/i.test(line))) continue;
        const f = line.split(',');
        writeParsed(b, n, parseTupleFields(f, `${path}:${ln}`));
        // Optional 6th/7th columns: ts, wirelen.
        if (f[5] !== undefined && f[5].trim() !== '') b.ts[n] = Number(f[5]);
        if (f[6] !== undefined && f[6].trim() !== '') b.wirelen[n] = Number(f[6]);
        stats.packets++;
        stats.bytes += b.wirelen[n]!;
        if (!(b.ts[n]! >= stats.firstTs)) stats.firstTs = b.ts[n]!;
        if (!(b.ts[n]! <= stats.lastTs)) stats.lastTs = b.ts[n]!;
        n++;
      }
      b.count = n;
      return n;
    },
  };
}
