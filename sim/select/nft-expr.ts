/**
 * The nftables hash expression as data: one parser from text, one renderer
 * back to text (nftables src/parser_bison.y, kernel net/netfilter/nft_hash.c;
 * kernel-semantics §6). Everything else (the selector, direction dependence,
 * reseeding, the rules kernel-glue writes and reads back) works on the data.
 *
 *   jhash <field> [. <field> ...] mod N [seed S] [offset O]
 *   symhash mod N [offset O]
 *
 * The grammar is nft 1.0.6's, checked against `nft -c` by
 * sim/select/nft-expr.kernel.test.ts: `seed` comes before `offset`, each at
 * most once, symhash takes no seed, and numbers are read like strtoull(s, 0):
 * 0x.. hex, a leading 0 octal (`mod 010` is mod 8; `08` is refused).
 *
 * Fields: ip saddr|daddr, ip6 saddr|daddr, tcp|udp|th sport|dport,
 * ct original ip|ip6 saddr|daddr.
 */
import { UsageError } from '../core/errors.ts';

export type NftFieldKind =
  | 'ip saddr' | 'ip daddr' | 'ip6 saddr' | 'ip6 daddr'
  | 'tcp sport' | 'tcp dport' | 'udp sport' | 'udp dport' | 'th sport' | 'th dport'
  | 'ct original ip saddr' | 'ct original ip daddr' | 'ct original ip6 saddr' | 'ct original ip6 daddr';

export interface NftField {
  readonly kind: NftFieldKind;
  /** Bytes of the value in the register: 4 (IPv4), 16 (IPv6) or 2 (a port). */
  readonly bytes: number;
  /** Bytes it takes in a concatenation: padded to a multiple of 4 with zero bytes. */
  readonly padded: number;
}

/** `jhash KEY mod N seed S offset O`: the kernel hashes the key's register bytes (§6.1). */
export interface NftJhash {
  readonly kind: 'jhash';
  readonly fields: readonly NftField[];
  readonly mod: number;
  readonly seed: number;
  /** False when the text had no seed: the kernel then draws a random one per rule (§6.1). */
  readonly seedGiven: boolean;
  readonly offset: number;
  /** Sum of the padded field sizes: jhash's `len`. */
  readonly keyLength: number;
}

/** `symhash mod N offset O`: the flow dissector's symmetric hash, keyed per boot. */
export interface NftSymhash {
  readonly kind: 'symhash';
  readonly mod: number;
  readonly offset: number;
}

export type NftHash = NftJhash | NftSymhash;

/** A parsed expression: the data, the text it came from, and what the user should know about it. */
export type NftHashExpr = NftHash & { readonly text: string; readonly warnings: string[] };

const FIELD_BYTES: Record<NftFieldKind, number> = {
  'ip saddr': 4, 'ip daddr': 4, 'ip6 saddr': 16, 'ip6 daddr': 16,
  'tcp sport': 2, 'tcp dport': 2, 'udp sport': 2, 'udp dport': 2, 'th sport': 2, 'th dport': 2,
  'ct original ip saddr': 4, 'ct original ip daddr': 4, 'ct original ip6 saddr': 16, 'ct original ip6 daddr': 16,
};

/** The kernel rejects mod 0 (ERANGE); our bucket arrays are int32, so mod stops at 2^31. */
export const NFT_MAX_MOD = 2 ** 31;

/** A jhash expression from its parts (the one constructor; the parser uses it too). */
export function nftJhash(kinds: readonly NftFieldKind[], mod: number, seed: number | null, offset = 0): NftJhash {
  const fields = kinds.map((kind): NftField => {
    const bytes = FIELD_BYTES[kind];
    return { kind, bytes, padded: (bytes + 3) & ~3 };
  });
  return { kind: 'jhash', fields, mod, seed: (seed ?? 0) >>> 0, seedGiven: seed !== null, offset, keyLength: fields.reduce((s, f) => s + f.padded, 0) };
}

/**
 * The text nft reads back as the same expression. The seed is written as 8 hex
 * digits when given (a rule without one gets a random seed, §6.1); `offset 0`
 * is left out, as `nft list` does.
 */
export function renderNftHash(h: NftHash): string {
  const tail = `mod ${h.mod}${h.kind === 'jhash' && h.seedGiven ? ` seed 0x${h.seed.toString(16).padStart(8, '0')}` : ''}${h.offset ? ` offset ${h.offset}` : ''}`;
  return h.kind === 'symhash' ? `symhash ${tail}` : `jhash ${h.fields.map((f) => f.kind).join(' . ')} ${tail}`;
}

/** Whether the value depends on the packet's direction: a `ct original` key hashes the connection's first packet's addresses. */
export function hashesConntrackOriginal(h: NftHash): boolean {
  return h.kind === 'jhash' && h.fields.some((f) => f.kind.startsWith('ct original '));
}

/** The same expression under another seed; null for symhash (its key is drawn at boot). */
export function withSeed(h: NftHash, seed: number): NftJhash | null {
  return h.kind === 'jhash' ? { ...h, seed: seed >>> 0, seedGiven: true } : null;
}

/** Same key, modulus, seed and offset: the same value for every packet. */
export function sameNftHash(a: NftHash, b: NftHash): boolean {
  return renderNftHash(a) === renderNftHash(b);
}

interface Tok { s: string; at: number }

/** Where a token is, in the user's own words. */
function place(toks: readonly Tok[], i: number, text: string): string {
  const t = toks[i];
  return t ? `'${t.s}' (character ${t.at + 1} of '${text}')` : `the end of '${text}'`;
}

/** strtoull(s, NULL, 0) as nft's scanner applies it: hex, octal with a leading 0, decimal. */
function nftNumber(s: string | undefined): number | null {
  if (s === undefined) return null;
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^0[0-7]*$/.test(s)) return s.length > 1 ? parseInt(s.slice(1), 8) : 0;
  if (/^[1-9][0-9]*$/.test(s)) return Number(s);
  return null;
}

/**
 * Parses an expression starting at token `at` (which is 'jhash' or 'symhash')
 * and stops where the expression ends; the caller decides what may follow.
 */
function parseAt(toks: readonly Tok[], at: number, text: string, where: string): { expr: NftHashExpr; end: number } {
  const fail = (i: number, msg: string): never => {
    throw new UsageError(`${where}: ${msg} at ${place(toks, i, text)}`);
  };
  const warnings: string[] = [];
  const kind = toks[at]!.s as 'jhash' | 'symhash';
  let i = at + 1;
  const kinds: NftFieldKind[] = [];
  const fieldAt: number[] = [];
  if (kind === 'jhash') {
    for (;;) {
      const start = i;
      fieldAt.push(i);
      const w = (k: number): string | undefined => toks[i + k]?.s;
      let name: string;
      if (w(0) === 'ct') {
        if (w(1) !== 'original') fail(i + 1, `only 'ct original …' keys are modelled (a reply-direction key hashes other addresses per packet)`);
        if (w(2) === 'saddr' || w(2) === 'daddr') {
          // nft 1.0.6 loads this in an ip table but aborts on every listing (kernel-semantics §6.1).
          warnings.push(`'ct original ${w(2)}' hashes the same 4 bytes as 'ct original ip ${w(2)}', but nft 1.0.6 crashes when listing a table that contains it: write 'ct original ip ${w(2)}'`);
          name = `ct original ip ${w(2)}`;
          i += 3;
        } else {
          name = `ct original ${w(2)} ${w(3)}`;
          i += 4;
        }
      } else {
        if (w(0) === 'mod' || w(0) === '.' || w(0) === undefined) fail(i, `expected a key such as 'ip saddr'`);
        name = `${w(0)} ${w(1)}`;
        i += 2;
      }
      if (!(name in FIELD_BYTES)) fail(start, `unsupported key '${toks.slice(start, i).map((t) => t.s).join(' ')}' (supported: ${Object.keys(FIELD_BYTES).join(', ')})`);
      kinds.push(name as NftFieldKind);
      if (toks[i]?.s === '.') { i++; continue; }
      break;
    }
    // nft: "conflicting protocols specified", at the field that conflicts with an earlier one.
    const familyOf = (k: string): string | null => (k.includes('ip6 ') ? 'ip6' : k.includes('ip ') ? 'ip' : null);
    const protoOf = (k: string): string | null => (k.startsWith('tcp') || k.startsWith('udp') ? k.slice(0, 3) : null);
    for (const [of, what] of [[familyOf, 'IPv4 and IPv6 fields (no packet has both'], [protoOf, 'tcp and udp fields (no packet is both; load one rule per protocol']] as const) {
      const first = kinds.map(of).find((x) => x !== null);
      const j = kinds.findIndex((k) => of(k) !== null && of(k) !== first);
      if (j >= 0) fail(fieldAt[j]!, `a key cannot mix ${what}; nft: conflicting protocols)`);
    }
  }
  const num = (label: string): number => {
    const v = nftNumber(toks[i + 1]?.s);
    if (v === null) fail(i + 1, `'${label}' needs a number (decimal, 0x hex, or octal with a leading 0, as nft reads it)`);
    i += 2;
    return v!;
  };
  if (toks[i]?.s !== 'mod') fail(i, `expected 'mod N' after the ${kind === 'jhash' ? 'key' : 'symhash'}`);
  const modAt = i + 1;
  const mod = num('mod');
  if (mod === 0) fail(modAt, `mod 0 is rejected by the kernel (ERANGE)`);
  if (mod > 0xffffffff) fail(modAt, `mod ${mod} does not fit in 32 bits (the kernel: ERANGE)`);
  if (mod > NFT_MAX_MOD) fail(modAt, `mod ${mod} is larger than clusterip-sim supports (${NFT_MAX_MOD})`);
  let seed: number | null = null;
  if (toks[i]?.s === 'seed') {
    if (kind === 'symhash') fail(i, `symhash takes no seed (its key is drawn at boot)`);
    const seedAt = i + 1;
    seed = num('seed');
    // nft 1.0.6 accepts a wider number and keeps its low 32 bits; we refuse rather than guess.
    if (seed > 0xffffffff) fail(seedAt, `seed ${seed} is not a 32-bit number (nft would keep only its low 32 bits)`);
  }
  let offset = 0;
  if (toks[i]?.s === 'offset') {
    const offAt = i + 1;
    offset = num('offset');
    if (offset > 0xffffffff) fail(offAt, `offset ${offset} does not fit in 32 bits`);
    if (offset + mod - 1 > 0xffffffff) fail(offAt, `offset ${offset} + mod ${mod} - 1 exceeds 2^32-1; the kernel refuses it (EOVERFLOW)`);
  }
  const exprText = toks.slice(at, i).map((t) => t.s).join(' ');
  if (kind === 'symhash') {
    warnings.push('symhash values cannot be predicted: the kernel keys it with a random per-boot secret. Only its symmetry and uniformity are modelled.');
    return { expr: { kind, mod, offset, text: exprText, warnings }, end: i };
  }
  if (seed === null) {
    warnings.push('no seed given: the kernel draws a random seed per rule and per node (nftables >= 0.8), so nodes disagree. Always write the seed; results assume seed 0.');
  }
  return { expr: { ...nftJhash(kinds, mod, seed, offset), text: exprText, warnings }, end: i };
}

function tokens(text: string): Tok[] {
  return [...text.matchAll(/\S+/g)].map((m) => ({ s: m[0], at: m.index! }));
}

/**
 * Parses a whole expression; anything nft would refuse is a UsageError naming
 * the token and its character position. `where` names the input (a flag, a
 * config key, a host's rule).
 */
export function parseNftHash(text: string, where = '--nft'): NftHashExpr {
  const toks = tokens(text);
  if (toks[0]?.s !== 'jhash' && toks[0]?.s !== 'symhash') {
    throw new UsageError(`${where}: expected 'jhash' or 'symhash' at ${place(toks, 0, text)} (e.g. 'jhash ip saddr . tcp sport mod 4 seed 0x1 offset 1')`);
  }
  const { expr, end } = parseAt(toks, 0, text, where);
  if (end < toks.length) {
    throw new UsageError(`${where}: unexpected ${place(toks, end, text)}: the expression '${expr.text}' ends there (${expr.kind === 'jhash' ? 'jhash KEY mod N [seed S] [offset O]' : 'symhash mod N [offset O]'}, in that order, each once)`);
  }
  return expr;
}

/**
 * The hash expression inside a rule as `nft list` prints it (e.g. `jhash ct
 * original ip saddr mod 3 seed 0x1 offset 1 @owned accept`); null when the
 * rule has none. What follows the expression belongs to the rule.
 */
export function findNftHash(rule: string, where: string): NftHashExpr | null {
  const toks = tokens(rule);
  const at = toks.findIndex((t) => t.s === 'jhash' || t.s === 'symhash');
  return at < 0 ? null : parseAt(toks, at, rule, where).expr;
}
