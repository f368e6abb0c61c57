/**
 * CSV tuples streamed into TupleBatches. Columns are found by the header's
 * names, in any order, extra columns ignored (so `tuples` output, with its
 * `ts` first and `wirelen` last, and `hash` output, with its `node`, read
 * back as they are); without a header the order is
 * `proto,saddr,sport,daddr,dport[,ts,wirelen]`. Fields follow RFC 4180 (a
 * field in double quotes may hold commas, and "" is a quote), except that a
 * record must fit on one line. `#` comments and blank lines are skipped,
 * proto is a number or a name, ports are empty for protocols without them.
 * Every error names file:line and the column.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { DataError } from '../core/errors.ts';
import { createBatch, DEFAULT_BATCH_CAPACITY, type TupleBatch } from './batch.ts';
import { parseIPv4, parseIPv6, parseProto } from '../core/addr.ts';
import { writeTupleV4, writeTupleV6 } from './tuple.ts';

/** The columns a tuple needs, then the optional ones, in the order a header-less file has them. */
export const CSV_COLUMNS = ['proto', 'saddr', 'sport', 'daddr', 'dport', 'ts', 'wirelen', 'l4_id'] as const;
export type CsvColumn = (typeof CSV_COLUMNS)[number];
const REQUIRED = 5;

/**
 * Splits one CSV record (RFC 4180 quoting: "a,b" is one field, "" inside
 * quotes is one quote). Spaces around unquoted fields are kept (callers
 * trim); text after a closing quote, or an unclosed quote, is an error at `where`.
 */
export function splitCsvRecord(line: string, where: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let i = 0;
  for (;;) {
    // Leading spaces before an opening quote are tolerated (`a, "b"`).
    let j = i;
    while (line[j] === ' ' || line[j] === '\t') j++;
    if (line[j] === '"') {
      let field = '';
      j++;
      for (;;) {
        const q = line.indexOf('"', j);
        if (q < 0) throw new DataError(where, `column ${out.length + 1}: a quoted field is not closed on this line (a record must fit on one line)`);
        field += line.slice(j, q);
        if (line[q + 1] === '"') { field += '"'; j = q + 2; continue; }
        j = q + 1;
        break;
      }
      while (line[j] === ' ' || line[j] === '\t') j++;
      out.push(field);
      if (j >= line.length) return out;
      if (line[j] !== ',') throw new DataError(where, `column ${out.length}: text after the closing quote ('${line.slice(j, j + 10)}')`);
      i = j + 1;
    } else {
      const c = line.indexOf(',', i);
      if (c < 0) { out.push(line.slice(i)); return out; }
      out.push(line.slice(i, c));
      i = c + 1;
    }
  }
}

/** Where each column is in a record (-1: absent). */
export type CsvLayout = Record<CsvColumn, number>;

const POSITIONAL: CsvLayout = { proto: 0, saddr: 1, sport: 2, daddr: 3, dport: 4, ts: 5, wirelen: 6, l4_id: 7 };

/**
 * The layout a first record gives: a header when any field is a column name
 * (then every required column must be there), else null (the record is data,
 * in the positional order).
 */
export function headerLayout(fields: readonly string[], where: string): CsvLayout | null {
  const names = fields.map((f) => f.trim().toLowerCase());
  if (!names.some((n) => (CSV_COLUMNS as readonly string[]).includes(n))) {
    // Words where addresses belong: a header with none of our names.
    if (/[g-z]/i.test(names[1] ?? '') && !(names[1] ?? '').includes(':') && parseIPv4(names[1] ?? '') === null) {
      throw new DataError(where, `header '${fields.join(',')}' names none of the columns ${CSV_COLUMNS.slice(0, REQUIRED).join(',')} (any order; ${CSV_COLUMNS.slice(REQUIRED).join(', ')} optional)`);
    }
    return null;
  }
  const layout = {} as CsvLayout;
  for (const c of CSV_COLUMNS) layout[c] = names.indexOf(c);
  const missing = CSV_COLUMNS.slice(0, REQUIRED).filter((c) => layout[c] < 0);
  if (missing.length) throw new DataError(where, `header '${fields.join(',')}' has no column ${missing.join(', ')} (needs ${CSV_COLUMNS.slice(0, REQUIRED).join(',')} in any order)`);
  return layout;
}

/** One record's fields, by column (`undefined` when the column is absent or the record is short). */
export function fieldsOf(f: readonly string[], layout: CsvLayout): string[] {
  return CSV_COLUMNS.map((c) => (layout[c] >= 0 ? f[layout[c]] : undefined)) as string[];
}

/**
 * Reads CSV records line by line: skips blanks and comments, takes the
 * header from the first record, and returns each data record's fields in
 * CSV_COLUMNS order (or null for a line that is not data).
 */
export class CsvTupleLines {
  private layout: CsvLayout | null = null;
  private first = true;
  constructor(private readonly name: string) {}

  /** The fields of `raw` (line `lineNo`) in CSV_COLUMNS order, or null when it is no record. */
  fields(raw: string, lineNo: number): string[] | null {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return null;
    const where = `${this.name}:${lineNo}`;
    const f = splitCsvRecord(line, where);
    if (this.first) {
      this.first = false;
      this.layout = headerLayout(f, where);
      if (this.layout) return null;
      this.layout = POSITIONAL;
    }
    return fieldsOf(f, this.layout!);
  }
}

export interface ParsedTuple {
  proto: number;
  v6: boolean;
  saddr: number;
  daddr: number;
  saddr6: Uint32Array | null;
  daddr6: Uint32Array | null;
  sport: number;
  dport: number;
}

function parsePort(s: string, where: string, field: string): number {
  const t = s.trim();
  if (t === '') return 0;
  if (!/^\d{1,5}$/.test(t) || Number(t) > 65535) throw new DataError(where, `field ${field}: '${s}' is not a port number 0-65535`);
  return Number(t);
}

/** Parses one tuple given as fields; `where` names the place for errors. */
export function parseTupleFields(f: readonly string[], where: string): ParsedTuple {
  const absent = CSV_COLUMNS.slice(0, REQUIRED).filter((_, k) => f[k] === undefined);
  if (absent.length) throw new DataError(where, `expected 5 fields proto,saddr,sport,daddr,dport: no field for ${absent.join(', ')}`);
  const proto = parseProto(f[0]!.trim());
  if (proto === null) throw new DataError(where, `field proto: '${f[0]}' is not a protocol number 0-255 or a known name (tcp, udp, icmp, sctp, …)`);
  const sa = f[1]!.trim(), da = f[3]!.trim();
  const v6 = sa.includes(':');
  let saddr = 0, daddr = 0, saddr6: Uint32Array | null = null, daddr6: Uint32Array | null = null;
  if (v6) {
    saddr6 = parseIPv6(sa);
    if (!saddr6) throw new DataError(where, `field saddr: '${sa}' is not an IPv6 address`);
    daddr6 = parseIPv6(da);
    if (!daddr6) throw new DataError(where, `field daddr: '${da}' is not an IPv6 address${da.includes(':') ? '' : ' (saddr is IPv6, so daddr must be too)'}`);
  } else {
    const s4 = parseIPv4(sa);
    if (s4 === null) throw new DataError(where, `field saddr: '${sa}' is not an IPv4 or IPv6 address`);
    const d4 = parseIPv4(da);
    if (d4 === null) throw new DataError(where, `field daddr: '${da}' is not an IPv4 address${da.includes(':') ? ' (saddr is IPv4, so daddr must be too)' : ''}`);
    saddr = s4;
    daddr = d4;
  }
  let sport = parsePort(f[2]!, where, 'sport'), dport = parsePort(f[4]!, where, 'dport');
  // tuples' l4_id (ICMP echo id/seq, ESP/AH SPI, GRE key) reads back into the lanes where the batch carries it.
  const id = f[7]?.trim();
  if (id && f[2]!.trim() === '' && f[4]!.trim() === '') {
    const echo = /^id=(\d+)\/seq=(\d+)$/.exec(id), word = /^(?:spi|key)=0x([0-9a-f]{1,8})$/i.exec(id);
    if (echo) { sport = Number(echo[1]) & 0xffff; dport = Number(echo[2]) & 0xffff; }
    else if (word) { const w = parseInt(word[1]!, 16) >>> 0; sport = w >>> 16; dport = w & 0xffff; }
    else throw new DataError(where, `column l4_id: '${id}' is not id=N/seq=N, spi=0xHEX or key=0xHEX`);
  }
  return { proto, v6, saddr, daddr, saddr6, daddr6, sport, dport };
}

/** An optional numeric column (ts, wirelen): 0 when absent or empty, else a finite number >= 0. */
export function optionalNumber(v: string | undefined, where: string, column: string): number {
  if (v === undefined || v.trim() === '') return 0;
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new DataError(where, `column ${column}: '${v}' is not a number >= 0`);
  return x;
}

export function writeParsed(b: TupleBatch, i: number, t: ParsedTuple): void {
  if (t.v6) writeTupleV6(b, i, t.proto, t.saddr6!, t.sport, t.daddr6!, t.dport);
  else writeTupleV4(b, i, t.proto, t.saddr, t.sport, t.daddr, t.dport);
}

/**
 * Streams a CSV file (or stdin for '-') as batches. The same batch object is
 * reused: consume it before asking for the next one. `lines[i]` is the
 * source line of packet i, for messages.
 */
export async function* readCsvTuples(
  path: string,
  capacity = DEFAULT_BATCH_CAPACITY,
  stdin: Readable = process.stdin,
): AsyncGenerator<{ batch: TupleBatch; lines: Uint32Array }> {
  const name = path === '-' ? '<stdin>' : path;
  const input = path === '-' ? stdin : createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    if (path === '-') return resolve();
    input.once('open', () => resolve());
    input.once('error', (e: NodeJS.ErrnoException) => reject(new DataError(name, e.code === 'ENOENT' ? 'no such file' : e.message)));
  });
  await opened;
  // node:readline loads only here: a run that reads no CSV (simulate --pcap) does not pay for it.
  const { createInterface } = await import('node:readline');
  const rl = createInterface({ input, crlfDelay: Infinity });
  const batch = createBatch(capacity);
  const lines = new Uint32Array(capacity);
  const records = new CsvTupleLines(name);
  let n = 0;
  let lineNo = 0;
  for await (const raw of rl) {
    lineNo++;
    const f = records.fields(raw, lineNo);
    if (!f) continue;
    writeParsed(batch, n, parseTupleFields(f, `${name}:${lineNo}`));
    // Optional columns (CSV_COLUMNS order): ts, wirelen.
    batch.ts[n] = optionalNumber(f[5], `${name}:${lineNo}`, 'ts');
    batch.wirelen[n] = optionalNumber(f[6], `${name}:${lineNo}`, 'wirelen');
    lines[n] = lineNo;
    n++;
    if (n === capacity) {
      batch.count = n;
      yield { batch, lines };
      n = 0;
    }
  }
  if (n > 0) {
    batch.count = n;
    yield { batch, lines };
  }
}
