/**
 * nft hash expressions with the verdict nftables 1.0.6 gives them (`nft -c`
 * in a table `ip`), shared by sim/select/nft-expr.test.ts (our parser alone)
 * and sim/select/nft-expr.kernel.test.ts (the same list through real nft).
 * `token`: the word our refusal must name.
 */
export interface NftCase {
  expr: string;
  nft: 'accept' | 'refuse';
  token?: string;
}

/** Cases where our parser must give nft's own verdict. */
export const SAME_VERDICT: readonly NftCase[] = [
  { expr: 'jhash ip saddr mod 4', nft: 'accept' },
  { expr: 'jhash ip saddr mod 4 seed 0x1', nft: 'accept' },
  { expr: 'jhash ip saddr mod 4 seed 0x1 offset 1', nft: 'accept' },
  { expr: 'jhash ip saddr mod 4 offset 1', nft: 'accept' },
  { expr: 'jhash ip  saddr   mod 4', nft: 'accept' },
  { expr: 'jhash ip saddr . tcp dport mod 4 seed 0xdeadbeef offset 0', nft: 'accept' },
  { expr: 'jhash ip saddr . ip daddr . tcp sport . tcp dport mod 16 seed 7', nft: 'accept' },
  { expr: 'jhash th sport mod 3', nft: 'accept' },
  { expr: 'jhash ct original ip saddr mod 3 seed 0x1234abcd offset 1', nft: 'accept' },
  { expr: 'jhash ip saddr mod 0x10', nft: 'accept' },
  { expr: 'jhash ip saddr mod 010 seed 010 offset 010', nft: 'accept' },
  { expr: 'jhash ip saddr mod 4 seed 0X1', nft: 'accept' },
  { expr: 'jhash ip saddr mod 4 seed 4294967295', nft: 'accept' },
  { expr: 'jhash ip saddr mod 4 offset 4294967292', nft: 'accept' },
  { expr: 'jhash ip saddr mod 2147483648', nft: 'accept' },
  { expr: 'symhash mod 4', nft: 'accept' },
  { expr: 'symhash mod 4 offset 2', nft: 'accept' },
  // issue 17 item 7: accepted by our old parser, refused by nft.
  { expr: 'jhash ip saddr mod 7 seed 0x1 offst 0', nft: 'refuse', token: 'offst' },
  { expr: 'jhash ip saddr mod 7 seed 0x1 offset 0 banana', nft: 'refuse', token: 'banana' },
  { expr: 'jhash ip saddr mod 7 sed 0x1', nft: 'refuse', token: 'sed' },
  { expr: 'jhash ip saddr mod 4 offset 1 seed 0x1', nft: 'refuse', token: 'seed' },
  { expr: 'jhash ip saddr mod 4 seed 1 seed 2', nft: 'refuse', token: 'seed' },
  { expr: 'jhash ip saddr mod 4 offset 1 offset 2', nft: 'refuse', token: 'offset' },
  { expr: 'symhash mod 4 seed 1', nft: 'refuse', token: 'seed' },
  { expr: 'jhash ip saddr mod 0', nft: 'refuse', token: '0' },
  { expr: 'jhash ip saddr mod 4294967296', nft: 'refuse', token: '4294967296' },
  { expr: 'jhash ip saddr mod 4 offset 4294967293', nft: 'refuse', token: '4294967293' },
  { expr: 'jhash ip saddr mod 08', nft: 'refuse', token: '08' },
  { expr: 'jhash ip saddr mod 1e3', nft: 'refuse', token: '1e3' },
  { expr: 'jhash ip saddr mod -1', nft: 'refuse', token: '-1' },
  { expr: 'jhash ip saddr mod 4 seed 0xg', nft: 'refuse', token: '0xg' },
  { expr: 'jhash ip saddr mod 4 seed', nft: 'refuse' },
  { expr: 'jhash ip saddr mod', nft: 'refuse' },
  { expr: 'jhash ip saddr', nft: 'refuse' },
  { expr: 'jhash mod 4', nft: 'refuse', token: 'mod' },
  { expr: 'jhash ip saddr . mod 4', nft: 'refuse', token: 'mod' },
  { expr: 'jhash ip saddr . ip6 daddr mod 4', nft: 'refuse', token: 'ip6' },
  { expr: 'jhash tcp sport . udp dport mod 4', nft: 'refuse', token: 'udp' },
  { expr: 'jhash ip saddr mod 4 seed 0x1 offset 1 @owned', nft: 'refuse', token: '@owned' },
];

/**
 * nft accepts these; we refuse them on purpose (the test checks that nft
 * still accepts, so a change in nft shows up here).
 */
export const WE_REFUSE: readonly (NftCase & { why: string })[] = [
  { expr: 'jhash ip saddr mod 4 seed 0x100000000', nft: 'accept', token: '0x100000000', why: 'nft keeps the low 32 bits of a wider seed; we refuse rather than guess' },
  { expr: 'jhash ip saddr mod 4294967295', nft: 'accept', token: '4294967295', why: 'buckets are int32 in the model: mod stops at 2^31' },
  { expr: 'jhash ct reply ip saddr mod 4', nft: 'accept', token: 'reply', why: 'reply-direction keys are not modelled' },
  { expr: 'jhash meta mark mod 4', nft: 'accept', token: 'meta', why: 'meta keys are not modelled' },
];
