/**
 * Parser for nftables hash expressions (nftables src/parser_bison.y, kernel
 * net/netfilter/nft_hash.c; kernel-semantics §6):
 *
 *   jhash <field> [. <field> ...] mod N [seed S] [offset O]
 *   symhash mod N [offset O]
 *
 * Fields: ip saddr|daddr, ip6 saddr|daddr, tcp|udp|th sport|dport,
 * ct original ip|ip6 saddr|daddr. The expression may sit inside a rule
 * (`meta mark set jhash ip saddr mod 4 seed 0x1`); text around it is ignored.
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

export type NftHashExpr =
  | { kind: 'jhash'; fields: NftField[]; mod: number; seed: number; seedGiven: boolean; offset: number; keyLength: number; text: string; warnings: string[] }
  | { kind: 'symhash'; mod: number; offset: number; text: string; warnings: string[] };

const FIELD_BYTES: Record<NftFieldKind, number> = {
  'ip saddr': 4, 'ip daddr': 4, 'ip6 saddr': 16, 'ip6 daddr': 16,
  'tcp sport': 2, 'tcp dport': 2, 'udp sport': 2, 'udp dport': 2, 'th sport': 2, 'th dport': 2,
  'ct original ip saddr': 4, 'ct original ip daddr': 4, 'ct original ip6 saddr': 16, 'ct original ip6 daddr': 16,
};

/** The kernel rejects mod 0 (ERANGE); our bucket arrays are int32, so mod stops at 2^31. */
export const NFT_MAX_MOD = 2 ** 31;

function parseU32(tok: string | undefined, what: string): number {
  if (tok === undefined) throw new UsageError(`--nft: '${what}' needs a number`);
  const v = /^0x[0-9a-f]+$/i.test(tok) ? parseInt(tok.slice(2), 16) : /^\d+$/.test(tok) ? Number(tok) : NaN;
  if (!Number.isFinite(v) || v < 0 || v > 0xffffffff) throw new UsageError(`--nft: ${what} '${tok}' is not a 32-bit unsigned number (decimal or 0x hex)`);
  return v;
}

export function parseNftHash(text: string): NftHashExpr {
  const toks = text.trim().split(/\s+/).filter(Boolean);
  const at = toks.findIndex((t) => t === 'jhash' || t === 'symhash');
  if (at < 0) throw new UsageError(`--nft: no 'jhash' or 'symhash' in '${text}' (e.g. 'jhash ip saddr . tcp sport mod 4 seed 0x1 offset 1')`);
  const warnings: string[] = [];
  let i = at + 1;
  const fields: NftField[] = [];
  const kind = toks[at] as 'jhash' | 'symhash';
  if (kind === 'jhash') {
    for (;;) {
      const start = i;
      let name: string;
      if (toks[i] === 'ct') {
        if (toks[i + 1] !== 'original') throw new UsageError(`--nft: only 'ct original …' keys are hashed the same on every node (got 'ct ${toks[i + 1] ?? ''}')`);
        if (toks[i + 2] === 'saddr' || toks[i + 2] === 'daddr') {
          // nft 1.0.6 loads this but aborts on every listing (kernel-semantics §6.1).
          warnings.push(`'ct original ${toks[i + 2]}' hashes the same 4 bytes as 'ct original ip ${toks[i + 2]}', but nft 1.0.6 crashes when listing a table that contains it: write 'ct original ip ${toks[i + 2]}'`);
          name = `ct original ip ${toks[i + 2]}`;
          i += 3;
        } else {
          name = `ct original ${toks[i + 2]} ${toks[i + 3]}`;
          i += 4;
        }
      } else {
        name = `${toks[i]} ${toks[i + 1]}`;
        i += 2;
      }
      if (!(name in FIELD_BYTES)) {
        throw new UsageError(`--nft: unsupported key '${toks.slice(start, i).join(' ')}' (supported: ${Object.keys(FIELD_BYTES).join(', ')})`);
      }
      const bytes = FIELD_BYTES[name as NftFieldKind];
      fields.push({ kind: name as NftFieldKind, bytes, padded: (bytes + 3) & ~3 });
      if (toks[i] === '.') { i++; continue; }
      break;
    }
    const fam4 = fields.some((f) => f.kind.includes('ip ')), fam6 = fields.some((f) => f.kind.includes('ip6 '));
    if (fam4 && fam6) throw new UsageError(`--nft: a key cannot mix IPv4 and IPv6 fields (no packet has both)`);
    const l4 = new Set(fields.filter((f) => f.kind.startsWith('tcp') || f.kind.startsWith('udp')).map((f) => f.kind.slice(0, 3)));
    if (l4.size > 1) throw new UsageError(`--nft: a key cannot mix tcp and udp fields (no packet is both); load one rule per protocol`);
  }
  if (toks[i] !== 'mod') throw new UsageError(`--nft: expected 'mod N' after the key${toks[i] ? `, got '${toks[i]}'` : ''} (nft: "syntax error, expecting mod")`);
  const mod = parseU32(toks[i + 1], 'mod');
  i += 2;
  if (mod === 0) throw new UsageError(`--nft: mod 0 is rejected by the kernel (ERANGE)`);
  if (mod > NFT_MAX_MOD) throw new UsageError(`--nft: mod ${mod} is larger than clusterip-sim supports (${NFT_MAX_MOD})`);
  let seed = 0;
  let seedGiven = false;
  let offset = 0;
  while (toks[i] === 'seed' || toks[i] === 'offset') {
    if (toks[i] === 'seed') {
      if (kind === 'symhash') throw new UsageError(`--nft: symhash takes no seed (its key is drawn at boot)`);
      seed = parseU32(toks[i + 1], 'seed');
      seedGiven = true;
    } else {
      offset = parseU32(toks[i + 1], 'offset');
    }
    i += 2;
  }
  if (offset + mod - 1 > 0xffffffff) throw new UsageError(`--nft: offset ${offset} + mod ${mod} - 1 exceeds 2^32-1; the kernel refuses it (EOVERFLOW)`);
  const exprText = toks.slice(at, i).join(' ');
  if (kind === 'symhash') {
    warnings.push('symhash values cannot be predicted: the kernel keys it with a random per-boot secret. Only its symmetry and uniformity are modelled.');
    return { kind, mod, offset, text: exprText, warnings };
  }
  if (!seedGiven) {
    warnings.push('no seed given: the kernel draws a random seed per rule and per node (nftables >= 0.8), so nodes disagree. Always write the seed; results assume seed 0.');
  }
  const keyLength = fields.reduce((s, f) => s + f.padded, 0);
  return { kind, fields, mod, seed, seedGiven, offset, keyLength, text: exprText, warnings };
}
