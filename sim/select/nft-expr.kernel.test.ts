/**
 * Our nft expression parser against real nft: every case of
 * test/nft-expr-cases.ts goes through `nft -c -f` (check only: the kernel
 * validates the batch and nothing is committed) inside a fresh anonymous
 * network namespace (`unshare -n`, gone when nft exits), in a table `ip` of
 * its own. nft's verdict must be the one the case records, and our parser
 * must give the same one (or refuse on purpose, WE_REFUSE).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SAME_VERDICT, WE_REFUSE, type NftCase } from '../../test/nft-expr-cases.ts';
import { parseNftHash } from './nft-expr.ts';

const dir = mkdtempSync(join(tmpdir(), 'nftexpr-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** nft's verdict on `meta mark set EXPR` in a table of its own. */
function nftVerdict(expr: string): { verdict: 'accept' | 'refuse'; stderr: string } {
  const file = join(dir, 'rule.nft');
  writeFileSync(file, `table ip nftexpr_test {\n\tchain c {\n\t\tmeta mark set ${expr}\n\t}\n}\n`);
  const r = spawnSync('unshare', ['-n', 'nft', '-c', '-f', file], { encoding: 'utf8', timeout: 20_000 });
  if (r.error) throw r.error;
  return { verdict: r.status === 0 ? 'accept' : 'refuse', stderr: r.stderr };
}

function ours(expr: string): 'accept' | 'refuse' {
  try {
    parseNftHash(expr);
    return 'accept';
  } catch {
    return 'refuse';
  }
}

describe('nft hash expressions: our parser and nft -c agree', () => {
  it('nft runs here', () => {
    expect(spawnSync('nft', ['--version'], { encoding: 'utf8' }).stdout).toMatch(/nftables v/);
  });
  const check = (c: NftCase, expectOurs: 'accept' | 'refuse'): void => {
    const n = nftVerdict(c.expr);
    expect({ expr: c.expr, nft: n.verdict }, n.stderr).toEqual({ expr: c.expr, nft: c.nft });
    expect({ expr: c.expr, ours: ours(c.expr) }).toEqual({ expr: c.expr, ours: expectOurs });
  };
  for (const c of SAME_VERDICT) it(`same verdict (${c.nft}): ${c.expr}`, () => check(c, c.nft));
  for (const c of WE_REFUSE) it(`nft accepts, we refuse (${c.why}): ${c.expr}`, () => check(c, 'refuse'));
});
