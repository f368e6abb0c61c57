/**
 * CSV tuples as a synchronous PacketInput (for workers): the file is read
 * once; tuple files are small next to captures.
 */
import { readTextFile } from '../core/errors.ts';
import type { TupleBatch } from './batch.ts';
import { CsvTupleLines, optionalNumber, parseTupleFields, writeParsed } from './csv-tuples.ts';
import { newStats, type PacketInput } from './input.ts';

export function openCsvInput(path: string): PacketInput {
  const text = readTextFile(path);
  const lines = text.split('\n');
  let ln = 0;
  const records = new CsvTupleLines(path);
  const stats = newStats();
  return {
    stats,
    close() {},
    fill(b: TupleBatch): number {
      let n = 0;
      while (n < b.capacity && ln < lines.length) {
        const f = records.fields(lines[ln++]!, ln);
        if (!f) continue;
        writeParsed(b, n, parseTupleFields(f, `${path}:${ln}`));
        // Optional columns (CSV_COLUMNS order): ts, wirelen.
        b.ts[n] = optionalNumber(f[5], `${path}:${ln}`, 'ts');
        b.wirelen[n] = optionalNumber(f[6], `${path}:${ln}`, 'wirelen');
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
