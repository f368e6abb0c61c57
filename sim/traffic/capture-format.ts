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
  const field = u32(h, 20, le);
  // The link-type field: bits 0-15 the link type, 16-25 reserved, 26 "FCS length present", 28-31 the FCS
  // length. libpcap takes bits 0-25 as the link type, so reserved bits make a type it does not know, and it
  // refuses the file (measured, libpcap 1.10.3 via tcpdump -r: 0x00010001 "unknown data link type 65537";
  // 0x14000001, FCS bits, reads as Ethernet). We refuse the same fields.
  if ((field & LT_RESERVED) !== 0) {
    throw new DataError(`${name}: byte 20`, `link-type field 0x${field.toString(16).padStart(8, '0')} has reserved bits 16-25 set (link type ${field & 0x03ffffff}); libpcap refuses such a file`);
  }
  return { le, nano, snaplen: u32(h, 16, le), linktype: field & 0xffff };
}

/** Reserved bits 16-25 of pcap's link-type field (libpcap's LT_RESERVED1). */
const LT_RESERVED = 0x03ff0000;

/**
 * pcapng section versions libpcap reads: 1.0, and 1.2, which some writers put
 * out (measured, libpcap 1.10.3 via tcpdump -r: 1.1 and 1.3 are "unsupported
 * pcapng savefile version"; tshark 4.0.17 refuses them too). Throws naming the
 * version field's byte offset.
 */
export function checkPcapngVersion(name: string, off: number, major: number, minor: number): void {
  if (major === 1 && (minor === 0 || minor === 2)) return;
  throw new DataError(`${name}: byte ${off}`, `pcapng section version ${major}.${minor} is not supported (libpcap reads 1.0 and 1.2)`);
}

export function unknownLinktype(name: string, off: number, lt: number): DataError {
  return new DataError(`${name}: byte ${off}`, `link type ${lt} is not supported (supported: ${Object.entries(LINKTYPES).map(([k, v]) => `${k} ${v}`).join(', ')})`);
}

/** pcapng interface: link type and timestamp scale. */
export interface Iface { linktype: number; snaplen: number; div: number; pow2: number; digits: number; offset: number; ok: boolean }
