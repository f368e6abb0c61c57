import { describe, expect, it } from 'vitest';
import { echoReplyOf, echoRequest, loadRawSocket } from './watch.ts';
import { parseConfig } from '../../sim/core/cluster-config.ts';

/** The Internet checksum over a buffer (RFC 1071), independent of raw-socket's. */
function inetSum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

describe('ICMP echo for the gateway check', () => {
  it('a request carries type 8, identifier, sequence and a valid checksum', () => {
    const raw = loadRawSocket();
    const b = echoRequest(raw, 0x1234, 7);
    expect([b[0], b[1], b.readUInt16BE(4), b.readUInt16BE(6)]).toEqual([8, 0, 0x1234, 7]);
    expect(inetSum(b)).toBe(0xffff);
  });
  it('reads identifier and sequence out of an IPv4 echo reply, nothing else', () => {
    const ip = Buffer.alloc(28);
    ip[0] = 0x45; ip[9] = 1; ip[20] = 0;
    ip.writeUInt16BE(0x1234, 24); ip.writeUInt16BE(9, 26);
    expect(echoReplyOf(ip)).toEqual({ id: 0x1234, seq: 9 });
    ip[20] = 8;
    expect(echoReplyOf(ip)).toBeNull();
    expect(echoReplyOf(Buffer.alloc(10))).toBeNull();
  });
  it('the health section is off unless given; thresholds are checked', () => {
    const base = 'cluster: { ip: 192.0.2.10, backend: nft, total_nodes: 1 }\nnodes:\n  - { name: a, owns: [1] }\n';
    expect(parseConfig(base, 'c.yaml').config.health).toBeUndefined();
    expect(parseConfig(`${base}health: { gateway: { address: 192.0.2.1 }, disk: { min_free_pct: 5 } }\n`, 'c.yaml').config.health).toEqual({ interval_s: 1, gateway: { address: '192.0.2.1', interval_s: 1, fails: 3 }, disk: { path: '/', min_free_pct: 5 } });
    expect(() => parseConfig(`${base}health: { memory: { min_available_pct: 120 } }\n`, 'c.yaml')).toThrow(/c\.yaml:4: health\.memory\.min_available_pct/);
  });
});
