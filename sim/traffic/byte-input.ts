/**
 * Synchronous byte input for capture readers: a reused window over a file, a
 * gzip stream, stdin or a memory buffer. Measured here (DESIGN.md, Habits):
 * `readSync` into a reused 256 KiB-1 MiB buffer beats `readFileSync` nine
 * times and has no 2 GiB limit, and memory stays bounded for any file size.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Zlib from 'node:zlib';
import { DataError } from '../core/errors.ts';
import { READ_WINDOW_BYTES } from './batch.ts';

/**
 * 256 KiB: the kernel copies each read into a window that stays in the L2
 * cache until the record loop has read it. Measured against 1 MiB (bench
 * captures, CPU time, ratio to the C reader in the same process): snaplen 96
 * 0.67 vs 0.65, full frames 0.90-0.93 vs 0.87-0.90. Reading the 520 MB
 * snaplen-96 capture and nothing else took 59 ms instead of 62 in C too.
 */
export const DEFAULT_WINDOW = READ_WINDOW_BYTES;
/** No record may need more than this in one piece (pcapng blocks are capped at 16 MiB by libpcap too). */
export const MAX_WINDOW = 1 << 25;

interface Pull {
  /** Reads into dst[off, off+len) from absolute stream position `pos`; returns bytes read, 0 at end. */
  read(dst: Uint8Array, off: number, len: number, pos: number): number;
  close(): void;
}

function fileOpenError(name: string, e: unknown): DataError {
  const err = e as NodeJS.ErrnoException;
  return new DataError(name, err.code === 'ENOENT' ? 'no such file' : err.code === 'EISDIR' ? 'is a directory' : err.message);
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function fdPull(fd: number, positional: boolean, owned: boolean): Pull {
  return {
    read(dst, off, len, pos) {
      for (;;) {
        try {
          return readSync(fd, dst, off, len, positional ? pos : null);
        } catch (e) {
          // stdin set non-blocking by someone else: wait a little, retry.
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') { Atomics.wait(sleepCell, 0, 0, 5); continue; }
          if ((e as NodeJS.ErrnoException).code === 'EOF') return 0;
          throw e;
        }
      }
    },
    close() { if (owned) try { closeSync(fd); } catch { /* already closed */ } },
  };
}

/**
 * Streaming gunzip without callbacks: drives the zlib handle's synchronous
 * write directly (the public *Sync functions need the whole input at once).
 */
function gzipPull(inner: Pull, name: string): Pull {
  // node:zlib loads only for a compressed capture: the others do not pay its start-up.
  const zlib = createRequire(import.meta.url)('node:zlib') as typeof Zlib;
  const z = zlib.createGunzip() as unknown as { _handle: { writeSync: (...a: unknown[]) => void; onerror: (m: string, e: number) => void }; _writeState: Uint32Array; close(): void };
  const handle = z._handle, state = z._writeState;
  if (!handle || typeof handle.writeSync !== 'function' || !state) throw new DataError(name, 'this Node.js cannot stream gzip synchronously; gunzip the capture first');
  let error: string | null = null;
  handle.onerror = (m: string) => { error = m; };
  const inBuf = new Uint8Array(64 * 1024);
  let inStart = 0, inEnd = 0, inPos = 0, inEof = false, outPos = 0;
  return {
    read(dst, off, len, pos) {
      if (pos !== outPos) throw new DataError(name, 'a gzip-compressed capture can only be read from the start (no byte ranges)');
      for (;;) {
        if (inStart === inEnd && !inEof) {
          const n = inner.read(inBuf, 0, inBuf.length, inPos);
          inPos += n; inStart = 0; inEnd = n;
          if (n === 0) inEof = true;
        }
        const availIn = inEnd - inStart;
        handle.writeSync(inEof ? zlib.constants.Z_FINISH : zlib.constants.Z_NO_FLUSH, inBuf, inStart, availIn, dst, off, len);
        if (error !== null) throw new DataError(`${name}: compressed byte ${inPos - availIn}`, `gzip data is damaged (${error})`);
        const produced = len - state[0]!;
        inStart += availIn - state[1]!;
        if (produced > 0) { outPos += produced; return produced; }
        if (inEof && inStart === inEnd) return 0;
        if (inEof && availIn - state[1]! === 0) return 0; // trailing garbage zlib will not consume
      }
    },
    close() { inner.close(); try { z.close(); } catch { /* ignore */ } },
  };
}

function memPull(data: Uint8Array): Pull {
  return {
    read(dst, off, len, pos) {
      if (pos >= data.length) return 0;
      const n = Math.min(len, data.length - pos);
      dst.set(data.subarray(pos, pos + n), off);
      return n;
    },
    close() { /* nothing */ },
  };
}

/**
 * Windows given back by closed inputs, by size, for the next input on this
 * thread. A pcap reader's fast loop is compiled for one window (pcap-fast.ts):
 * a reused window lets the next file of the same shape reuse that loop
 * instead of compiling and warming a new one, a few ms a file, which adds up
 * over the thousands of small files a rotating tcpdump (-C, -G) writes.
 */
const spareWindows = new Map<number, Uint8Array[]>();
const MAX_SPARE = 4;

function takeWindow(size: number): Uint8Array {
  return spareWindows.get(size)?.pop() ?? new Uint8Array(size);
}

function giveWindow(buf: Uint8Array): void {
  let list = spareWindows.get(buf.length);
  if (!list) spareWindows.set(buf.length, (list = []));
  if (list.length < MAX_SPARE && !list.includes(buf)) list.push(buf);
}

/** Which input reads into each batch read window (useWindow), by that window. */
const windowUsers = new WeakMap<Uint8Array, ByteInput>();

/**
 * A sliding window: `buf[pos..lim)` holds stream bytes `base+pos .. base+lim`.
 * Readers parse directly from `buf` and call `ensure(n)` before touching n bytes.
 */
export class ByteInput {
  buf: Uint8Array;
  view: DataView;
  pos = 0;
  lim = 0;
  /** Stream offset of buf[0]. */
  base = 0;
  eof = false;
  /** Size of the underlying file when known (plain files), else -1. */
  readonly size: number;
  readonly gzip: boolean;
  private pull: Pull;

  constructor(readonly name: string, pull: Pull, size: number, gzip: boolean, start: number, window: number) {
    this.pull = pull;
    this.size = size;
    this.gzip = gzip;
    this.ownSize = window;
    this.buf = takeWindow(window);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.base = start;
  }

  /** The size of this input's own window. */
  private readonly ownSize: number;
  /** buf is a batch's read window (useWindow), not this input's own. */
  private borrowed = false;

  /**
   * Moves the unread bytes into `w`, a batch's read window (batch.ts
   * batchReadWindow), and reads on into it, so that a decoder finds the file
   * bytes and the batch's lanes in one WebAssembly memory (pcap-wasm.ts). The
   * input that read into `w` before moves its own unread bytes out first.
   * Returns false, changing nothing, for gzip input (zlib writes into it), a
   * closed input, or unread bytes larger than `w`.
   */
  useWindow(w: Uint8Array): boolean {
    if (this.buf === w) return true;
    if (this.closed || this.gzip || this.lim - this.pos > w.length) return false;
    const prev = windowUsers.get(w);
    if (prev) prev.leaveWindow();
    w.set(this.buf.subarray(this.pos, this.lim));
    this.dropWindow();
    this.moveTo(w);
    this.borrowed = true;
    windowUsers.set(w, this);
    return true;
  }

  /** Back to a window of its own, with the unread bytes (another input takes the batch window). */
  private leaveWindow(): void {
    const live = this.lim - this.pos;
    let size = this.ownSize;
    while (size < live) size *= 2;
    const own = takeWindow(size);
    own.set(this.buf.subarray(this.pos, this.lim));
    this.dropWindow();
    this.moveTo(own);
  }

  /** Lets go of buf: a batch window is freed for the next input, a window of its own goes back to the spares. */
  private dropWindow(): void {
    if (this.borrowed) { windowUsers.delete(this.buf); this.borrowed = false; } else giveWindow(this.buf);
  }

  /** buf becomes `to`, which already holds the unread bytes at 0. */
  private moveTo(to: Uint8Array): void {
    this.base += this.pos;
    this.lim -= this.pos;
    this.pos = 0;
    this.buf = to;
    this.view = new DataView(to.buffer, to.byteOffset, to.byteLength);
  }

  /** Stream offset of `buf[pos]`. */
  get offset(): number { return this.base + this.pos; }

  /**
   * Makes at least `n` bytes available at `pos` unless the stream ends first;
   * returns how many are available (< n only at end of stream).
   */
  ensure(n: number): number {
    let have = this.lim - this.pos;
    if (have >= n || this.eof) return have;
    if (n > this.buf.length) {
      const size = Math.min(MAX_WINDOW, Math.max(n, this.buf.length * 2));
      if (n > size) throw new DataError(`${this.name}: byte ${this.offset}`, `a record of ${n} bytes is larger than the ${MAX_WINDOW}-byte limit`);
      const nb = new Uint8Array(size);
      nb.set(this.buf.subarray(this.pos, this.lim));
      if (this.borrowed) { windowUsers.delete(this.buf); this.borrowed = false; }
      this.buf = nb;
      this.view = new DataView(nb.buffer);
    } else if (this.pos > 0) {
      this.buf.copyWithin(0, this.pos, this.lim);
    }
    this.base += this.pos;
    this.lim = have;
    this.pos = 0;
    while (this.lim < n) {
      const got = this.pull.read(this.buf, this.lim, this.buf.length - this.lim, this.base + this.lim);
      if (got === 0) { this.eof = true; break; }
      this.lim += got;
    }
    have = this.lim;
    return have;
  }

  /** Moves to stream offset `off` (forward only within plain files). */
  seek(off: number): void {
    if (off >= this.base && off <= this.base + this.lim) { this.pos = off - this.base; return; }
    this.base = off;
    this.pos = this.lim = 0;
    this.eof = false;
  }

  /** Reads `len` bytes at absolute offset `off` without moving the window (plain files and memory only). */
  peek(off: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let got = 0;
    while (got < len) {
      const n = this.pull.read(out, got, len - got, off + got);
      if (n === 0) break;
      got += n;
    }
    return got === len ? out : out.subarray(0, got);
  }

  /** Closes the stream and gives the window back for the next input (safe to call twice; nothing reads after). */
  close(): void {
    this.pull.close();
    if (this.closed) return;
    this.closed = true;
    this.dropWindow();
    // The window may now be another input's: this one reads nothing more.
    this.buf = new Uint8Array(0);
    this.view = new DataView(this.buf.buffer);
    this.pos = this.lim = 0;
    this.eof = true;
  }

  private closed = false;
}

/** Opens a path ('-' = stdin), a gzip file transparently (by its magic bytes), or a memory buffer. */
export function openByteInput(path: string | Uint8Array, start = 0, window = DEFAULT_WINDOW, label?: string): ByteInput {
  if (typeof path !== 'string') {
    const name = label ?? '<memory>';
    if (path.length >= 2 && path[0] === 0x1f && path[1] === 0x8b) return new ByteInput(name, gzipPull(memPull(path), name), -1, true, 0, window);
    return new ByteInput(name, memPull(path), path.length, false, start, Math.min(window, Math.max(4096, path.length + 16)));
  }
  if (path === '-') {
    const name = label ?? '<stdin>';
    const raw = fdPull(0, false, false);
    // Peek the first two bytes for the gzip magic, then replay them.
    const head = new Uint8Array(2);
    let n = 0;
    while (n < 2) { const k = raw.read(head, n, 2 - n, n); if (k === 0) break; n += k; }
    let replayed = false;
    const replay: Pull = {
      read(dst, off, len, pos) {
        if (!replayed && pos < n) {
          const k = Math.min(len, n - pos);
          dst.set(head.subarray(pos, pos + k), off);
          if (pos + k >= n) replayed = true;
          return k;
        }
        return raw.read(dst, off, len, pos);
      },
      close() { raw.close(); },
    };
    if (n === 2 && head[0] === 0x1f && head[1] === 0x8b) return new ByteInput(name, gzipPull(replay, name), -1, true, 0, window);
    return new ByteInput(name, replay, -1, false, 0, window);
  }
  const name = label ?? path;
  let fd: number;
  try { fd = openSync(path, 'r'); } catch (e) { throw fileOpenError(name, e); }
  let size: number;
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    size = st.isFile() ? st.size : -1;
  } catch (e) { closeSync(fd); throw fileOpenError(name, e); }
  const pull = fdPull(fd, size >= 0, true);
  const head = new Uint8Array(2);
  const hn = size >= 0 ? pull.read(head, 0, 2, 0) : 0;
  if (hn === 2 && head[0] === 0x1f && head[1] === 0x8b) return new ByteInput(name, gzipPull(pull, name), -1, true, 0, window);
  // A small file gets a small window, rounded up to a power of two so that files of similar sizes
  // share spare windows (and compiled loops) one after another.
  let win = window;
  if (size >= 0) for (win = 4096; win < window && win < size - start + 16; win *= 2);
  win = Math.min(win, window);
  return new ByteInput(name, pull, size, false, start, win);
}
