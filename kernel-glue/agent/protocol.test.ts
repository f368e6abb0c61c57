import { describe, expect, it, afterAll } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeBeat, encodeBeat, loadKey, ReplayGuard, verifyDatagram, PROTOCOL_VERSION, type BeatBody, type PeerDirectory } from './protocol.ts';

const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const OTHER = Buffer.from('fedcba9876543210fedcba9876543210');
const NOW = 1_800_000_000;

function beat(over: Partial<BeatBody> = {}): BeatBody {
  return { v: PROTOCOL_VERSION, node: 'node2', inc: 1000, seq: 1, ts: NOW, owned: [2], health: 'ok', leaving: false, view: { alive: 7, eligible: 7, owners: [1, 2, 4], waiting_ago: [null, null, null], incs: [1, 1000, 1] }, fb: 0, load: [10], ...over };
}
const dir: PeerDirectory = { self: 'node1', addresses: new Map([['node1', '10.0.0.1'], ['node2', '10.0.0.2'], ['node3', null]]) };

describe('beat authentication', () => {
  it('round-trips a signed beat', () => {
    const b = beat();
    const v = decodeBeat(encodeBeat(b, KEY), KEY);
    expect(v).toEqual({ ok: true, beat: b });
  });

  it('refuses a beat signed with another key (forged) and names the claimed sender', () => {
    const v = decodeBeat(encodeBeat(beat(), OTHER), KEY);
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.reason).toBe('bad-mac');
      expect(v.node).toBe('node2');
    }
  });

  it('refuses a beat whose body was changed after signing (a faked takeover claim)', () => {
    const wire = encodeBeat(beat({ owned: [2] }), KEY).toString('latin1').replace('"owned":[2]', '"owned":[1]');
    const v = decodeBeat(Buffer.from(wire, 'latin1'), KEY);
    expect(v.ok ? 'ok' : v.reason).toBe('bad-mac');
  });

  it('refuses datagrams without a MAC, oversized ones, and a valid MAC over a wrong shape', () => {
    expect(decodeBeat(Buffer.from('{"node":"node2"}'), KEY)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(decodeBeat(Buffer.alloc(5000, 0x41), KEY)).toMatchObject({ ok: false, reason: 'malformed' });
    const bad = { ...beat(), seq: 'x' } as unknown as BeatBody;
    expect(decodeBeat(encodeBeat(bad, KEY), KEY)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(decodeBeat(encodeBeat({ ...beat(), v: 99 }, KEY), KEY)).toMatchObject({ ok: false, reason: 'malformed' });
    const badView = { ...beat(), view: { alive: 7, eligible: 7, owners: [1], waiting_ago: [-1], incs: [] } } as BeatBody;
    expect(decodeBeat(encodeBeat(badView, KEY), KEY)).toMatchObject({ ok: false, reason: 'malformed' });
    expect(decodeBeat(encodeBeat(beat({ view: null }), KEY), KEY).ok).toBe(true);
  });
});

describe('replay protection', () => {
  it('accepts increasing sequence numbers and refuses a replayed one', () => {
    const g = new ReplayGuard(10);
    expect(g.check(beat({ seq: 1 }), NOW).ok).toBe(true);
    expect(g.check(beat({ seq: 2 }), NOW).ok).toBe(true);
    expect(g.check(beat({ seq: 2 }), NOW)).toMatchObject({ ok: false, reason: 'replayed' });
    expect(g.check(beat({ seq: 1 }), NOW)).toMatchObject({ ok: false, reason: 'replayed' });
    expect(g.check(beat({ seq: 3 }), NOW).ok).toBe(true);
  });

  it('a new incarnation restarts the sequence; an older incarnation is refused', () => {
    const g = new ReplayGuard(10);
    expect(g.check(beat({ inc: 1000, seq: 50 }), NOW).ok).toBe(true);
    expect(g.check(beat({ inc: 2000, seq: 1 }), NOW).ok).toBe(true);
    expect(g.check(beat({ inc: 1000, seq: 51 }), NOW)).toMatchObject({ ok: false, reason: 'old-incarnation' });
  });

  it('refuses stale and future timestamps outside the window, keeps per-sender state apart', () => {
    const g = new ReplayGuard(10);
    expect(g.check(beat({ ts: NOW - 10.5 }), NOW)).toMatchObject({ ok: false, reason: 'stale' });
    expect(g.check(beat({ ts: NOW + 11 }), NOW)).toMatchObject({ ok: false, reason: 'stale' });
    expect(g.check(beat({ ts: NOW - 9.9, seq: 5 }), NOW).ok).toBe(true);
    // A refused stale beat did not advance the state; another sender has its own.
    expect(g.check(beat({ node: 'node3', seq: 1 }), NOW).ok).toBe(true);
    expect(g.check(beat({ seq: 6 }), NOW).ok).toBe(true);
  });

  it('verifyDatagram: MAC, sender known, not ourselves, source address, then replay', () => {
    const g = new ReplayGuard(10);
    const ok = encodeBeat(beat({ seq: 7 }), KEY);
    expect(verifyDatagram(ok, '10.0.0.2', KEY, dir, g, NOW).ok).toBe(true);
    expect(verifyDatagram(ok, '10.0.0.2', KEY, dir, g, NOW)).toMatchObject({ ok: false, reason: 'replayed' });
    expect(verifyDatagram(encodeBeat(beat({ seq: 8 }), KEY), '10.0.0.9', KEY, dir, g, NOW)).toMatchObject({ ok: false, reason: 'wrong-source' });
    expect(verifyDatagram(encodeBeat(beat({ node: 'node1', seq: 1 }), KEY), '10.0.0.2', KEY, dir, g, NOW)).toMatchObject({ ok: false, reason: 'self' });
    expect(verifyDatagram(encodeBeat(beat({ node: 'mallory', seq: 1 }), KEY), '10.0.0.2', KEY, dir, g, NOW)).toMatchObject({ ok: false, reason: 'unknown-node' });
    expect(verifyDatagram(encodeBeat(beat({ seq: 9 }), OTHER), '10.0.0.2', KEY, dir, g, NOW)).toMatchObject({ ok: false, reason: 'bad-mac' });
    // node3 has no configured address: any source is accepted.
    expect(verifyDatagram(encodeBeat(beat({ node: 'node3', seq: 1 }), KEY), '10.9.9.9', KEY, dir, g, NOW).ok).toBe(true);
  });
});

describe('key file', () => {
  const d = mkdtempSync(join(tmpdir(), 'agent-key-'));
  afterAll(() => rmSync(d, { recursive: true, force: true }));

  it('reads a private key file and strips the trailing newline', () => {
    const f = join(d, 'ok.key');
    writeFileSync(f, 'abcdefghijklmnopqrstuvwxyz012345\n');
    chmodSync(f, 0o600);
    expect(loadKey(f).toString()).toBe('abcdefghijklmnopqrstuvwxyz012345');
  });

  it('refuses a world-readable key file, a short key and a missing file, naming the file', () => {
    const f = join(d, 'open.key');
    writeFileSync(f, 'abcdefghijklmnopqrstuvwxyz012345\n');
    chmodSync(f, 0o644);
    expect(() => loadKey(f)).toThrow(/open\.key.*every user read the key/);
    const s = join(d, 'short.key');
    writeFileSync(s, 'short\n');
    chmodSync(s, 0o600);
    expect(() => loadKey(s)).toThrow(/short\.key.*at least 16/);
    expect(() => loadKey(join(d, 'none.key'))).toThrow(/none\.key.*no such file/);
  });
});
