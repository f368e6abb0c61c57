/**
 * Writes a cpio archive in the "newc" format the kernel unpacks into its
 * initramfs (Documentation/driver-api/early-userspace/buffer-format.rst).
 * Several gzip'd archives may be concatenated; later ones add files.
 */

export type CpioEntry =
  | { path: string; type: 'file'; mode: number; data: Buffer }
  | { path: string; type: 'dir'; mode: number }
  | { path: string; type: 'symlink'; target: string };

const S_IFREG = 0o100000, S_IFDIR = 0o040000, S_IFLNK = 0o120000;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, '0');
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

/** Archive of `entries` (paths relative, no leading slash), ending with the TRAILER!!! record. */
export function cpioNewc(entries: readonly CpioEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const record = (path: string, mode: number, data: Buffer): void => {
    const name = Buffer.from(path + '\0', 'utf8');
    const header = '070701' + [ino++, mode, 0, 0, 1, mtime, data.length, 0, 0, 0, 0, name.length, 0].map(hex8).join('');
    parts.push(Buffer.from(header, 'ascii'), name, Buffer.alloc(pad4(110 + name.length)), data, Buffer.alloc(pad4(data.length)));
  };
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '');
    if (!path || path.split('/').includes('..')) throw new Error(`cpio: bad path '${e.path}'`);
    if (e.type === 'file') record(path, S_IFREG | (e.mode & 0o7777), e.data);
    else if (e.type === 'dir') record(path, S_IFDIR | (e.mode & 0o7777), Buffer.alloc(0));
    else record(path, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8'));
  }
  record('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}
