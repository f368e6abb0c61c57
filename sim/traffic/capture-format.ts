/**
 * The capture file formats, as data: pcap's file header (the four magics,
 * version 2.x, snap length, link type) and the pcapng constants and interface
 * description the reader keeps per interface. CaptureInput (capture.ts) and
 * the share planner (share-plan.ts) read these.
 */
import { DataError } from '../core/errors.ts';
import { LINKTYPES } from './decode.ts';

/** Largest caplen we believe in a pcap record (libpcap's MAXIMUM_SNAPLEN is 262144). */
export const PCAP_MAX_CAPLEN = 262144;
export const PCAPNG_MAX_BLOCK = 16 * 1024 * 1024;
/** pcapng section header block type. */
export const SHB = 0x0a0d0d0a;
/** pcapng byte-order magic, as written by the section header block. */
export const BOM = 0x1a2b3c4d;

/** A 32-bit field in the capture's byte order. */
export function u32(buf: Uint8Array, o: number, le: boolean): number {
  return le
    ? (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16) | (buf[o + 3]! << 24)) >>> 0
    : ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
}
/** A 16-bit field in the capture's byte order. */
export function u16(buf: Uint8Array, o: number, le: boolean): number {
  return le ? buf[o]! | (buf[o + 1]! << 8) : (buf[o]! << 8) | buf[o + 1]!;
}

/** What the first bytes of a capture say. */
export interface PcapHeader { le: boolean; nano: boolean; snaplen: number; linktype: number }

/** The pcap file header, or null when the magic is not pcap's. */
export function parsePcapHeader(h: Uint8Array, name: string): PcapHeader | null {
  if (h.length < 4) return null;
  const m = u32(h, 0, false);
  let le: boolean, nano: boolean;
  if (m === 0xa1b2c3d4) { le = false; nano = false; }
  else if (m === 0xd4c3b2a1) { le = true; nano = false; }
  else if (m === 0xa1b23c4d) { le = false; nano = true; }
  else if (m === 0x4d3cb2a1) { le = true; nano = true; }
  else return null;
  if (h.length < 24) throw new DataError(`${name}: byte ${h.length}`, `pcap file header is cut short (${h.length} of 24 bytes)`);
  const major = u16(h, 4, le);
  if (major !== 2) throw new DataError(`${name}: byte 4`, `pcap version ${major}.${u16(h, 6, le)} is not 2.x`);
  return { le, nano, snaplen: u32(h, 16, le), linktype: u32(h, 20, le) & 0xffff };
}

export function unknownLinktype(name: string, off: number, lt: number): DataError {
  return new DataError(`${name}: byte ${off}`, `link type ${lt} is not supported (supported: ${Object.entries(LINKTYPES).map(([k, v]) => `${k} ${v}`).join(', ')})`);
}

/** pcapng interface: link type and timestamp scale. */
export interface Iface { linktype: number; snaplen: number; div: number; pow2: number; digits: number; offset: number; ok: boolean }
