/**
 * Live capture through the optional `cap` package (libpcap), decoded into the
 * same TupleBatches as captures. Main thread only: `cap` is a native addon
 * with its own event loop handle, so it is imported lazily here and never
 * inside workers. Packets are timestamped on arrival (cap does not pass
 * libpcap's timestamp). Fragments go through the one reassembler
 * (defrag.ts, held by frag-hold.ts): each is held until its datagram completes, then every fragment
 * of it is delivered with the datagram's L4 fields (the completing one marked
 * as the datagram, L4.COMPLETES), as from a capture file; a datagram that does
 * not complete within the kernel's timeout (30 s, IPv6 60 s), or is killed by
 * an overlap, is dropped and its fragments counted (`unresolved-fragment`,
 * `bad-fragment`, `duplicate-fragment`). Other packets are not held behind a
 * waiting fragment (a live link cannot wait 30 s), so a datagram's fragments
 * come out where it completes.
 */
import { isMainThread } from 'node:worker_threads';
import { DataError, UsageError } from '../core/errors.ts';
import { copySlot, createBatch, type TupleBatch } from './batch.ts';
import { DEC, DEC_REASON, decodeFrame, linktypeSupported } from './decode.ts';
import { FragmentHold } from './frag-hold.ts';
import { accountBatch, countSkip, newStats, type IngestStats } from './input.ts';

export interface LiveOptions {
  /** Interface name (default: libpcap's first device). */
  device?: string;
  /** BPF filter, e.g. 'tcp port 80'. */
  filter?: string;
  /** Seconds to capture (default: until `limit` or close()). */
  duration?: number;
  /** Stop after this many delivered packets. */
  limit?: number;
  /** libpcap buffer size in bytes (default 10 MiB). */
  bufferSize?: number;
}

/** Like PacketInput, but asynchronous: packets arrive in real time. */
export interface LiveInput {
  /** Resolves with the batch filled (from 0); 0 when the capture is over. */
  next(batch: TupleBatch): Promise<number>;
  readonly stats: IngestStats;
  readonly device: string;
  readonly linktype: number;
  close(): void;
}

const LINK: Record<string, number> = { ETHERNET: 1, NULL: 0, RAW: 101, LINKTYPE_LINUX_SLL: 113 };

interface CapModule { Cap: { new(): CapHandle; findDevice(ip?: string): string | undefined; deviceList(): { name: string }[] } }
interface CapHandle {
  open(device: string, filter: string, bufSize: number, buffer: Buffer): string;
  setMinBytes?(n: number): void;
  on(ev: 'packet', fn: (nbytes: number, trunc: boolean) => void): void;
  close(): void;
}

/** Loads `cap`, or explains how to get it. */
async function loadCap(): Promise<CapModule> {
  if (!isMainThread) throw new UsageError('live capture runs on the main thread only (cap is a native addon)');
  try {
    const name = 'cap'; // a variable: the package is optional and has no types
    const m = (await import(name)) as CapModule & { default?: CapModule };
    return m.Cap ? m : m.default!;
  } catch (e) {
    throw new UsageError(`live capture needs the optional package 'cap' (npm install cap; it builds against libpcap: apt-get install libpcap-dev build-essential): ${(e as Error).message}`);
  }
}

export async function openLive(opts: LiveOptions = {}): Promise<LiveInput> {
  const mod = await loadCap();
  const cap = new mod.Cap();
  const device = opts.device ?? mod.Cap.findDevice() ?? mod.Cap.deviceList()[0]?.name;
  if (!device) throw new DataError('live capture', 'no capture device found');
  const frame = Buffer.alloc(65536);
  let lt: string;
  try {
    lt = cap.open(device, opts.filter ?? '', opts.bufferSize ?? 10 * 1024 * 1024, frame);
  } catch (e) {
    throw new DataError(`live capture on ${device}`, `${(e as Error).message}${opts.filter ? ` (filter '${opts.filter}')` : ''}`);
  }
  // `cap` names four link types and reports the others as "Unknown linktype N" (NFLOG on nflog:N is 239).
  const other = /^Unknown linktype (\d+)$/.exec(lt);
  const linktype = LINK[lt] ?? (other && linktypeSupported(Number(other[1])) ? Number(other[1]) : undefined);
  if (linktype === undefined) { cap.close(); throw new DataError(`live capture on ${device}`, `link type ${lt} is not supported`); }
  cap.setMinBytes?.(0);

  const stats = newStats();
  const ringCap = 65536;
  const ring = createBatch(ringCap);
  let head = 0, count = 0, closed = false, delivered = 0;
  const limit = opts.limit ?? Infinity;
  let wake: (() => void) | null = null;
  const t0 = performance.timeOrigin;
  const now = (): number => (t0 + performance.now()) / 1000;
  let timer: NodeJS.Timeout | null = null;
  const cur = createBatch(1);
  /** Appends slot j of b to the ring of packets to deliver. */
  const push = (b: TupleBatch, j: number): void => {
    if (count === ringCap) { countSkip(stats, 'overrun'); head = (head + 1) % ringCap; count--; }
    copySlot(b, j, ring, (head + count) % ringCap);
    count++;
  };
  const hold = new FragmentHold(push, (reason) => countSkip(stats, reason));
  // The kernel's reassembly timer: a datagram still incomplete after its timeout is given up, even if nothing more arrives.
  const expiry = setInterval(() => hold.expire(now()), 1000);
  expiry.unref();

  const finish = (): void => {
    if (closed) return;
    closed = true;
    if (timer) clearTimeout(timer);
    clearInterval(expiry);
    try { cap.close(); } catch { /* already closed */ }
    hold.dropAll();
    wake?.();
  };
  if (opts.duration !== undefined) timer = setTimeout(finish, opts.duration * 1000);

  cap.on('packet', (nbytes: number) => {
    if (closed) return;
    const r = decodeFrame(frame, 0, nbytes, linktype, cur, 0, 0);
    const ts = now();
    if (r === DEC.OK || r === DEC.FRAGMENT) {
      cur.ts[0] = ts;
      cur.wirelen[0] = nbytes;
      if (r === DEC.FRAGMENT) hold.add(cur, 0, ts, frame);
      else push(cur, 0);
      if (delivered + count >= limit) finish();
      wake?.();
    } else countSkip(stats, DEC_REASON[r]!);
  });

  return {
    stats,
    device,
    linktype,
    async next(batch: TupleBatch): Promise<number> {
      while (count === 0 && !closed) {
        await new Promise<void>((res) => { wake = res; });
        wake = null;
        // let a burst accumulate a little
        if (count > 0 && count < batch.capacity && !closed) await new Promise((r) => setTimeout(r, 20));
      }
      let n = 0;
      while (count > 0 && n < batch.capacity && delivered + n < limit) {
        copySlot(ring, head, batch, n++);
        head = (head + 1) % ringCap;
        count--;
      }
      batch.count = n;
      delivered += n;
      accountBatch(stats, batch, 0, n);
      return n;
    },
    close: finish,
  };
}
