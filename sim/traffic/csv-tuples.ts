/**
 * CSV tuples `proto,saddr,sport,daddr,dport` (header optional, `#` comments and
 * blank lines skipped, proto as number or name, ports empty for protocols that
 * have none) streamed into TupleBatches. Every error names file:line and field.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { DataError } from '../core/errors.ts';
import { createBatch, DEFAULT_BATCH_CAPACITY, type TupleBatch } from './batch.ts';
import { parseIPv4, parseIPv6, parseProto } from '../core/addr.ts';
import { writeTupleV4, writeTupleV6 } from './tuple.ts';

const HEADER = /^\s*proto\s*,\s*saddr\s*,\s*sport\s*,\s*daddr\s*,\s*dport\s*(,.*)?$/i;

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
  if (f.length < 5) throw new DataError(where, `expected 5 fields proto,saddr,sport,daddr,dport, got ${f.length}`);
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
  return { proto, v6, saddr, daddr, saddr6, daddr6, sport: parsePort(f[2]!, where, 'sport'), dport: parsePort(f[4]!, where, 'dport') };
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
  const rl = createInterface({ input, crlfDelay: Infinity });
  const batch = createBatch(capacity);
  const lines = new Uint32Array(capacity);
  let n = 0;
  let lineNo = 0;
  for await (const raw of rl) {
    lineNo++;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (lineNo === 1 && HEADER.test(line)) continue;
    if (lineNo === 1 && /[a-z]/i.test(line.split(',')[1] ?? '') && !/:/.test(line.split(',')[1] ?? '')) {
      throw new DataError(`${name}:1`, `header '${line}' is not 'proto,saddr,sport,daddr,dport'`);
    }
    writeParsed(batch, n, parseTupleFields(line.split(','), `${name}:${lineNo}`));
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
