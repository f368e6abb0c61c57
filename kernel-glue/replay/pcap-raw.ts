/**
 * Writes rewritten frames as a classic microsecond Ethernet pcap (tcpdump,
 * tshark, tcpreplay and the qemu harness's `qtool pcap` read it). Timestamps
 * are the capture's, relative to its first frame.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Rewritten } from './rewrite.ts';

export class PcapWriterRaw {
  private readonly fd: number;
  constructor(path: string) {
    this.fd = openSync(path, 'w');
    const h = Buffer.alloc(24);
    h.writeUInt32LE(0xa1b2c3d4, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeUInt32LE(262144, 16);
    h.writeUInt32LE(1, 20);
    writeSync(this.fd, h);
  }

  writeAll(rw: Rewritten): void {
    let total = 0;
    for (let i = 0; i < rw.count; i++) total += 16 + rw.len[i]!;
    const out = Buffer.alloc(total);
    let o = 0;
    for (let i = 0; i < rw.count; i++) {
      const l = rw.len[i]!, t = rw.ts[i]!;
      const sec = Math.floor(t);
      out.writeUInt32LE(sec, o);
      out.writeUInt32LE(Math.min(999999, Math.round((t - sec) * 1e6)), o + 4);
      out.writeUInt32LE(l, o + 8);
      out.writeUInt32LE(l, o + 12);
      out.set(rw.bytes.subarray(rw.start[i]!, rw.start[i]! + l), o + 16);
      o += 16 + l;
    }
    writeSync(this.fd, out);
  }

  close(): void {
    closeSync(this.fd);
  }
}
