/**
 * Just enough ELF reading to copy a binary with its libraries into the guest:
 * the program interpreter (PT_INTERP) and the DT_NEEDED names of a 64-bit
 * little-endian ELF (x86-64, what Debian's amd64 packages contain).
 */

export interface ElfDeps {
  /** e.g. /lib64/ld-linux-x86-64.so.2; null for static binaries and shared objects. */
  interp: string | null;
  /** DT_NEEDED sonames, in order. */
  needed: string[];
}

const PT_LOAD = 1, PT_DYNAMIC = 2, PT_INTERP = 3;
const DT_NULL = 0, DT_NEEDED = 1, DT_STRTAB = 5;

/** Reads the interpreter and DT_NEEDED list; `name` only labels errors. */
export function readElfDeps(buf: Buffer, name: string): ElfDeps {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${name}: not an ELF file`);
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error(`${name}: only 64-bit little-endian ELF is supported (class ${buf[4]}, data ${buf[5]})`);
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  const loads: { vaddr: number; off: number; filesz: number }[] = [];
  let interp: string | null = null;
  let dyn: { off: number; size: number } | null = null;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    if (p + 56 > buf.length) throw new Error(`${name}: program header ${i} at byte ${p} is past the end of the file`);
    const type = buf.readUInt32LE(p);
    const off = Number(buf.readBigUInt64LE(p + 8));
    const vaddr = Number(buf.readBigUInt64LE(p + 16));
    const filesz = Number(buf.readBigUInt64LE(p + 32));
    if (type === PT_LOAD) loads.push({ vaddr, off, filesz });
    else if (type === PT_INTERP) interp = buf.toString('latin1', off, off + filesz).replace(/\0.*$/s, '');
    else if (type === PT_DYNAMIC) dyn = { off, size: filesz };
  }
  if (!dyn) return { interp, needed: [] };
  const toOff = (vaddr: number): number => {
    for (const l of loads) if (vaddr >= l.vaddr && vaddr < l.vaddr + l.filesz) return vaddr - l.vaddr + l.off;
    throw new Error(`${name}: address 0x${vaddr.toString(16)} is in no PT_LOAD segment`);
  };
  const neededOffs: number[] = [];
  let strtab = -1;
  for (let p = dyn.off; p + 16 <= dyn.off + dyn.size; p += 16) {
    const tag = Number(buf.readBigInt64LE(p));
    const val = Number(buf.readBigUInt64LE(p + 8));
    if (tag === DT_NULL) break;
    if (tag === DT_NEEDED) neededOffs.push(val);
    else if (tag === DT_STRTAB) strtab = toOff(val);
  }
  if (neededOffs.length && strtab < 0) throw new Error(`${name}: DT_NEEDED without DT_STRTAB`);
  const needed = neededOffs.map((o) => {
    const s = strtab + o;
    const e = buf.indexOf(0, s);
    return buf.toString('latin1', s, e < 0 ? buf.length : e);
  });
  return { interp, needed };
}
