/**
 * Unit tests for the pure parts of the qemu harness: the cpio writer, the ELF
 * NEEDED reader and the probe rule/output helpers. The boot itself is tested
 * by clusterip.kernel.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cpioNewc } from './cpio.ts';
import { readElfDeps } from './elf.ts';
import { clusteripRestore, parseProbeOutput, tupleFile } from './clusterip-probe.ts';

describe('cpioNewc', () => {
  it('writes an archive that cpio(1) extracts to the same files, directories and symlinks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cpio-test-'));
    try {
      const archive = cpioNewc([
        { path: 'd', type: 'dir', mode: 0o755 },
        { path: 'd/a.txt', type: 'file', mode: 0o644, data: Buffer.from('hello\n') },
        { path: 'd/odd', type: 'file', mode: 0o755, data: Buffer.from('abc') },
        { path: 'd/link', type: 'symlink', target: 'a.txt' },
      ]);
      expect(archive.length % 4).toBe(0);
      execFileSync('cpio', ['-i', '-d', '--quiet'], { cwd: dir, input: archive });
      expect(readFileSync(join(dir, 'd/a.txt'), 'utf8')).toBe('hello\n');
      expect(readFileSync(join(dir, 'd/odd'), 'utf8')).toBe('abc');
      expect(readlinkSync(join(dir, 'd/link'))).toBe('a.txt');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses paths that leave the archive root', () => {
    expect(() => cpioNewc([{ path: '../x', type: 'dir', mode: 0o755 }])).toThrow(/bad path/);
  });
});

describe('readElfDeps', () => {
  it('agrees with readelf on /bin/sh', () => {
    const buf = readFileSync('/bin/sh');
    const deps = readElfDeps(buf, '/bin/sh');
    const re = execFileSync('readelf', ['-d', '-l', '/bin/sh'], { encoding: 'utf8' });
    const needed = [...re.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
    const interp = /program interpreter: ([^\]]+)\]/.exec(re)?.[1] ?? null;
    expect(needed.length).toBeGreaterThan(0);
    expect(deps.needed).toEqual(needed);
    expect(deps.interp).toBe(interp);
  });

  it('names the file when it is not ELF', () => {
    expect(() => readElfDeps(Buffer.from('#!/bin/sh\n'.padEnd(80, ' ')), 'script.sh')).toThrow(/script\.sh: not an ELF/);
  });
});

describe('clusterip probe helpers', () => {
  it('renders one --new rule per IP and one NFLOG chain per mark', () => {
    const text = clusteripRestore({ ips: ['10.99.0.10', '10.99.0.11'], hashmode: 'sourceip-sourceport', totalNodes: 3, hashInit: 0xdeadbeef });
    expect(text.match(/-j CLUSTERIP --new/g)).toHaveLength(2);
    expect(text).toContain('--total-nodes 3 --local-node 1 --hash-init 3735928559');
    for (let k = 0; k <= 3; k++) expect(text).toContain(`-A M${k} -j NFLOG --nflog-group 5 --nflog-prefix m${k} --nflog-threshold 1`);
    expect(text.trimEnd().endsWith('COMMIT')).toBe(true);
  });

  it('writes one tuple per line and refuses more than 65535', () => {
    expect(tupleFile([{ proto: 6, saddr: '10.0.0.1', sport: 1, daddr: '10.99.0.10', dport: 80 }])).toBe('6 10.0.0.1 1 10.99.0.10 80\n');
    expect(() => tupleFile(new Array(65536).fill({ proto: 6, saddr: '1.1.1.1', sport: 1, daddr: '2.2.2.2', dport: 2 }))).toThrow(/65535/);
  });

  it('parses rounds, /proc readbacks, accepted tuples and summaries, and throws on E lines', () => {
    const rounds = parseProbeOutput(['K 6.1', 'R cfg 1', 'L 10.99.0.10 1', 'A 0 m1', 'A 2 m1', 'P sent=3 logged=2 bad=0', 'R cfg all', 'L 10.99.0.10 1,2', 'A 0 m1', 'A 1 m2', 'A 1 m2', 'X 9 mismatch m1', 'P sent=3 logged=4 bad=1 sentinel-missing'].join('\n'));
    expect(rounds).toHaveLength(2);
    expect(rounds[0]!.locals).toEqual({ '10.99.0.10': '1' });
    expect([...rounds[0]!.accepted.keys()]).toEqual([0, 2]);
    expect(rounds[0]!.sentinelSeen).toBe(true);
    expect(rounds[1]!.accepted.get(1)).toEqual(['m2', 'm2']);
    expect(rounds[1]!.bad).toHaveLength(1);
    expect(rounds[1]!.sentinelSeen).toBe(false);
    expect(() => parseProbeOutput('R a 1\nE probe a 1 failed')).toThrow(/line 2: E probe/);
  });
});
