/**
 * CSV tuples as a synchronous PacketInput (for workers): the file is read
 * once; tuple files are small next to captures.
 */
import { DataError, readTextFile } from '../core/errors.ts';
import type { TupleBatch } from './batch.ts';
import { CsvTupleLines, parseTupleFields, writeParsed } from './csv-tuples.ts';
import { newStats, type PacketInput } from './input.ts';

/** An optional numeric column: `dflt` when absent or empty, else a finite number >= 0. */
function number(v: string | undefined, where: string, column: string, dflt: number): number {
  if (v === undefined || v.trim() === '') return dflt;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new DataError(where, `column ${column}: '${v}' is not a number >= 0`);
  return x;
}

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
        b.ts[n] = number(f[5], `${path}:${ln}`, 'ts', 0);
        b.wirelen[n] = number(f[6], `${path}:${ln}`, 'wirelen', 0);
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
