import { describe, expect, it } from 'vitest';
import { UsageError } from '../core/errors.ts';
import { SAME_VERDICT, WE_REFUSE } from '../../test/nft-expr-cases.ts';
import { findNftHash, hashesConntrackOriginal, nftJhash, parseNftHash, renderNftHash, sameNftHash, withSeed, type NftFieldKind } from './nft-expr.ts';
import { reseed } from './reseed.ts';

/** Strips what the parser adds beside the data (the text it read, warnings). */
const data = (x: ReturnType<typeof parseNftHash>): unknown => {
  const { text: _t, warnings: _w, ...rest } = x;
  return rest;
};

describe('nft hash expression: text -> data -> text', () => {
  const kinds: NftFieldKind[][] = [['ip saddr'], ['ct original ip saddr'], ['ip saddr', 'tcp sport', 'tcp dport'], ['ip6 saddr', 'ip6 daddr', 'udp dport'], ['th sport'], ['ct original ip6 daddr', 'th dport']];
  it('every rendered expression parses back to the same data (seed given or not, offset 0 or not)', () => {
    let n = 0;
    for (const k of kinds) {
      for (const seed of [null, 0, 1, 0xdeadbeef]) {
        for (const offset of [0, 1, 0xfffff000]) {
          for (const mod of [1, 3, 4096]) {
            const h = nftJhash(k, mod, seed, offset);
            const text = renderNftHash(h);
            expect(data(parseNftHash(text))).toEqual(h);
            expect(renderNftHash(parseNftHash(text))).toBe(text);
            n++;
          }
        }
      }
    }
    const s = { kind: 'symhash' as const, mod: 5, offset: 2 };
    expect(data(parseNftHash(renderNftHash(s)))).toEqual(s);
    expect(n).toBe(kinds.length * 4 * 3 * 3);
  });
  it('renders the form nft lists (seed as 8 hex digits, no offset 0)', () => {
    expect(renderNftHash(nftJhash(['ct original ip saddr'], 3, 0x1234abcd, 1))).toBe('jhash ct original ip saddr mod 3 seed 0x1234abcd offset 1');
    expect(renderNftHash(nftJhash(['ip saddr', 'tcp sport'], 7, 1, 0))).toBe('jhash ip saddr . tcp sport mod 7 seed 0x00000001');
    expect(renderNftHash(nftJhash(['ip saddr'], 7, null))).toBe('jhash ip saddr mod 7');
  });
  it('reads numbers as nft does: 0x hex, octal with a leading 0, decimal', () => {
    expect(parseNftHash('jhash ip saddr mod 010 seed 0X1F offset 07')).toMatchObject({ mod: 8, seed: 0x1f, offset: 7 });
    expect(parseNftHash('jhash ip saddr mod 0x10')).toMatchObject({ mod: 16 });
  });
});

describe('nft hash expression: the verdicts nft gives (test/nft-expr-cases.ts)', () => {
  for (const c of SAME_VERDICT) {
    it(`${c.nft}s '${c.expr}'`, () => {
      if (c.nft === 'accept') {
        expect(() => parseNftHash(c.expr)).not.toThrow();
        return;
      }
      let err: unknown;
      try {
        parseNftHash(c.expr);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UsageError);
      const msg = (err as Error).message;
      expect(msg).toMatch(/^--nft: /);
      // The place: the offending word and its character position, or the end of the text.
      if (c.token) expect(msg).toContain(`'${c.token}' (character ${c.expr.lastIndexOf(` ${c.token}`) + 2} of '${c.expr}')`);
      else expect(msg).toContain(`the end of '${c.expr}'`);
    });
  }
  for (const c of WE_REFUSE) {
    it(`refuses '${c.expr}' (nft accepts it: ${c.why})`, () => {
      expect(() => parseNftHash(c.expr)).toThrow(new RegExp(`'${c.token!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}' \\(character`));
    });
  }
  it('names the input it was given', () => {
    expect(() => parseNftHash('jhash ip saddr mod 4 sed 1', 'hosts[2] rule')).toThrow(/^hosts\[2\] rule: /);
  });
  it('warns about a missing seed and about symhash', () => {
    expect(parseNftHash('jhash ip saddr mod 4').warnings.join()).toMatch(/no seed given/);
    expect(parseNftHash('symhash mod 4').warnings.join()).toMatch(/cannot be predicted/);
  });
});

describe('nft hash expression inside a rule (host state)', () => {
  it('finds the expression and leaves the rest of the rule alone', () => {
    const h = findNftHash('jhash ct original ip saddr mod 3 seed 0xdeadbeef offset 1 @owned accept', 'rule');
    expect(h && renderNftHash(h)).toBe('jhash ct original ip saddr mod 3 seed 0xdeadbeef offset 1');
    expect(findNftHash('counter packets 1 bytes 60 drop', 'rule')).toBeNull();
    expect(() => findNftHash('jhash ct original ip saddr mod 0 @owned accept', 'rule x')).toThrow(/^rule x: mod 0/);
  });
});

describe('what works on the data', () => {
  it('direction dependence: only ct original keys', () => {
    expect(hashesConntrackOriginal(parseNftHash('jhash ct original ip saddr mod 3'))).toBe(true);
    expect(hashesConntrackOriginal(parseNftHash('jhash ip saddr . ct original ip daddr mod 3'))).toBe(true);
    expect(hashesConntrackOriginal(parseNftHash('jhash ip saddr mod 3'))).toBe(false);
    expect(hashesConntrackOriginal(parseNftHash('symhash mod 3'))).toBe(false);
  });
  it('reseeding changes only the seed, for jhash; symhash has none', () => {
    const h = parseNftHash('jhash ip saddr . tcp dport mod 5 offset 2');
    const r = withSeed(h, 0xabcdef01)!;
    expect(renderNftHash(r)).toBe('jhash ip saddr . tcp dport mod 5 seed 0xabcdef01 offset 2');
    expect(sameNftHash(r, h)).toBe(false);
    expect(sameNftHash({ ...r, seed: 0 }, nftJhash(['ip saddr', 'tcp dport'], 5, 0, 2))).toBe(true);
    expect(withSeed(parseNftHash('symhash mod 3'), 1)).toBeNull();
    const spec = { backend: 'nft' as const, expr: 'jhash ip saddr mod 4 seed 1', kernel: '6.1', endian: 'little' as const };
    expect(reseed(spec, 7)).toEqual({ ...spec, expr: 'jhash ip saddr mod 4 seed 0x00000007' });
    expect(reseed({ ...spec, expr: 'symhash mod 4' }, 7)).toBeNull();
  });
});
