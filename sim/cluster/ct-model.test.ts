/**
 * The conntrack validity model against hand-built packet sequences. Expected
 * verdicts come from nf_conntrack_proto_tcp.c / _icmp.c as read (tcp_error's
 * tcp_valid_flags, tcp_new's sNO column, tcp_packet's tcp_conntracks table;
 * source reading), and from the kernel tests' measured counters: lone FINs,
 * RSTs and stray SYN-ACKs are counted by no xt_cluster / ct node
 * (sim/engine/kernel-conntrack.kernel.test.ts), ICMP echo replies and errors
 * without a request by no CLUSTERIP node (kernel-clusterip.kernel.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { createBatch, F, L4, type TupleBatch } from '../traffic/batch.ts';
import { CT, firstClass, Judge, K, step, TH, V, type StepOut } from './ct-model.ts';

const C = 0x0a000001, S = 0x0a0000fe;
type P = { from: 'c' | 's'; tcp?: number; icmp?: number; proto?: number; ts?: number; id?: number };

function batch(ps: P[]): TupleBatch {
  const b = createBatch(ps.length);
  ps.forEach((p, i) => {
    const c = p.from === 'c';
    b.saddr[i] = c ? C : S; b.daddr[i] = c ? S : C;
    b.family[i] = 4; b.ts[i] = p.ts ?? i * 0.01; b.wirelen[i] = 60;
    if (p.icmp !== undefined) {
      b.proto[i] = 1; b.l4a[i] = (p.icmp << 24) >>> 0; b.l4b[i] = ((p.id ?? 7) << 16) | i; b.l4flags[i] = L4.HAS4 | L4.HAS8;
    } else if (p.tcp !== undefined) {
      b.proto[i] = 6; b.sport[i] = c ? 40000 : 80; b.dport[i] = c ? 80 : 40000; b.l4flags[i] = L4.HAS4 | L4.HAS8;
      const t = p.tcp;
      b.flags[i] = F.PORTS | (t & TH.SYN ? F.SYN : 0) | (t & TH.ACK ? F.ACK : 0) | (t & TH.RST ? F.RST : 0) | (t & TH.FIN ? F.FIN : 0);
    } else {
      b.proto[i] = p.proto ?? 17; b.sport[i] = c ? 5000 : 53; b.dport[i] = c ? 53 : 5000; b.flags[i] = F.PORTS; b.l4flags[i] = L4.HAS4 | L4.HAS8;
    }
  });
  b.count = ps.length;
  return b;
}

/** 1 for each packet the model marks INVALID. */
function verdicts(ps: P[], loose = true): { invalid: number[]; judge: Judge } {
  const b = batch(ps), j = new Judge(loose, 120);
  j.judge(b);
  return { invalid: ps.map((_, i) => (b.l4flags[i]! & L4.CT_INVALID ? 1 : 0)), judge: j };
}

const { SYN, ACK, FIN, RST, PSH, URG } = TH;

describe('TCP: which packets open an entry (tcp_new, the sNO column)', () => {
  it('a SYN opens; an ACK opens only with tcp_loose; FIN, FIN|ACK, RST, RST|ACK, SYN|ACK and no flags never do', () => {
    expect(firstClass(K.TCP, SYN)).toBe(CT.NEW);
    expect(firstClass(K.TCP, ACK)).toBe(CT.LOOSE);
    expect(firstClass(K.TCP, ACK | PSH)).toBe(CT.LOOSE);
    expect(firstClass(K.TCP, ACK | URG)).toBe(CT.LOOSE);
    for (const f of [FIN, FIN | ACK, RST, RST | ACK, SYN | ACK, 0, FIN | PSH | URG, SYN | FIN, SYN | RST]) expect(firstClass(K.TCP, f), `flags ${f}`).toBe(CT.INVALID);
  });
  it('tcp_valid_flags is checked before the entry: SYN|FIN is INVALID even in an established connection', () => {
    const { invalid } = verdicts([{ from: 'c', tcp: SYN }, { from: 's', tcp: SYN | ACK }, { from: 'c', tcp: ACK }, { from: 'c', tcp: SYN | FIN }]);
    expect(invalid).toEqual([0, 0, 0, 1]);
  });
});

describe('TCP: a connection followed in capture order (tcp_conntracks)', () => {
  it('a whole conversation, both directions, is valid; a lone FIN, RST and a stray SYN|ACK are not', () => {
    const conv: P[] = [
      { from: 'c', tcp: SYN }, { from: 's', tcp: SYN | ACK }, { from: 'c', tcp: ACK }, { from: 'c', tcp: ACK | PSH },
      { from: 's', tcp: ACK | PSH }, { from: 's', tcp: FIN | ACK }, { from: 'c', tcp: ACK }, { from: 'c', tcp: FIN | ACK }, { from: 's', tcp: ACK },
    ];
    expect(verdicts(conv).invalid).toEqual(conv.map(() => 0));
    expect(verdicts([{ from: 'c', tcp: FIN | ACK }]).invalid).toEqual([1]);
    expect(verdicts([{ from: 'c', tcp: RST }]).invalid).toEqual([1]);
    expect(verdicts([{ from: 'c', tcp: SYN | ACK }]).invalid).toEqual([1]);
  });
  it('after a RST the entry is CLOSE: a late ACK is accepted (sCL -> sCL), a new SYN reopens', () => {
    expect(verdicts([{ from: 'c', tcp: SYN }, { from: 's', tcp: RST | ACK }, { from: 'c', tcp: ACK }, { from: 'c', tcp: SYN }]).invalid).toEqual([0, 0, 0, 0]);
  });
  it('a SYN|ACK from the client after its own SYN is INVALID (sSS, original synack = sIV)', () => {
    expect(verdicts([{ from: 'c', tcp: SYN }, { from: 'c', tcp: SYN | ACK }]).invalid).toEqual([0, 1]);
  });
  it('tcp_loose=0: a mid-stream ACK without an entry is INVALID, and so is everything after it that cannot open one', () => {
    expect(verdicts([{ from: 'c', tcp: ACK }, { from: 'c', tcp: ACK | PSH }, { from: 'c', tcp: FIN | ACK }], false).invalid).toEqual([1, 1, 1]);
    expect(verdicts([{ from: 'c', tcp: ACK }, { from: 'c', tcp: ACK | PSH }, { from: 'c', tcp: FIN | ACK }], true).invalid).toEqual([0, 0, 0]);
  });
  it('one direction only: the SYN|ACK the capture lacks is assumed, once per connection, and counted', () => {
    const { invalid, judge } = verdicts([{ from: 'c', tcp: SYN }, { from: 'c', tcp: ACK }, { from: 'c', tcp: ACK | PSH }, { from: 'c', tcp: FIN | ACK }]);
    expect(invalid).toEqual([0, 0, 0, 0]);
    expect(judge.stats.assumed).toBe(1);
    expect(verdicts([{ from: 'c', tcp: SYN }, { from: 's', tcp: SYN | ACK }, { from: 'c', tcp: ACK }]).judge.stats.assumed).toBe(0);
  });
  it('the entry is gone after the idle timeout: a FIN then is INVALID', () => {
    expect(verdicts([{ from: 'c', tcp: SYN, ts: 0 }, { from: 's', tcp: SYN | ACK, ts: 0.1 }, { from: 'c', tcp: FIN | ACK, ts: 500 }]).invalid).toEqual([0, 0, 1]);
  });
  it('the reply direction of a mid-stream pickup: the sender of the first ACK is the original', () => {
    const o: StepOut = { code: 0, verdict: 0, assumed: false };
    const a = step(0, K.TCP, ACK, 1, true, o).code;
    expect(o.verdict).toBe(V.ORIGINAL);
    step(a, K.TCP, ACK, 0, true, o);
    expect(o.verdict).toBe(V.REPLY);
  });
});

describe('ICMP and the others', () => {
  it('an echo request opens, its reply is valid; a reply without a request, and errors, are INVALID', () => {
    expect(verdicts([{ from: 'c', icmp: 8 }, { from: 's', icmp: 0 }]).invalid).toEqual([0, 0]);
    expect(verdicts([{ from: 'c', icmp: 0 }]).invalid).toEqual([1]);
    // The client's own echo reply does not answer the client's request (the entry's reply tuple runs the other way).
    expect(verdicts([{ from: 'c', icmp: 8 }, { from: 'c', icmp: 0 }]).invalid).toEqual([0, 1]);
    const e = verdicts([{ from: 'c', icmp: 3 }, { from: 'c', icmp: 11 }, { from: 'c', icmp: 13 }]);
    expect(e.invalid).toEqual([1, 1, 0]);
    expect(e.judge.stats.icmpErrors).toBe(2);
  });
  it('UDP and generic protocols always open or refresh an entry', () => {
    expect(verdicts([{ from: 'c' }, { from: 's' }, { from: 'c', proto: 47 }, { from: 'c', proto: 50 }, { from: 'c', proto: 132 }]).invalid).toEqual([0, 0, 0, 0, 0]);
    expect(firstClass(K.OTHER, 0)).toBe(CT.NEW);
    expect(firstClass(K.ICMP_REQUEST, 0)).toBe(CT.NEW);
    expect(firstClass(K.ICMP_REPLY, 0)).toBe(CT.INVALID);
  });
});
