/**
 * Our CLUSTERIP model against the real ipt_CLUSTERIP module of Debian's 6.1
 * kernel, booted once under qemu (test/qemu/guest.ts). Checks:
 *   - every hash mode x node counts 2, 3, 5 x two hash-inits: for a few hundred
 *     seeded tuples (TCP, UDP, UDP-Lite, DCCP, SCTP, ESP, AH, ICMP, GRE, IPIP,
 *     edge ports and addresses), the one node that accepts each packet is
 *     buildSelector({backend:'clusterip', ..., kernel:'6.1', endian:'little'})'s
 *     bucket + 1, and the ct mark agrees (kernel-semantics.md §4.1, §4.2);
 *   - the /proc/net/ipt_CLUSTERIP file semantics of §4.4;
 *   - the first `--new` wins (§4.6) and the cluster MAC joins the interface (§4.7).
 * One boot for the whole file; fails (never skips) when not root or when the
 * image cannot be built.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { buildSelector } from '../../sim/select/build.ts';
import { CLUSTERIP_MODES, type ClusteripMode } from '../../sim/select/selector.ts';
import { L4, createBatch } from '../../sim/traffic/batch.ts';
import { writeTupleV4 } from '../../sim/traffic/tuple.ts';
import { parseIPv4 } from '../../sim/core/addr.ts';
import { runGuest, type GuestResult } from './guest.ts';
import { randomStream32 as prng } from '../../sim/core/prng.ts';
import {
  GUEST_SH_LIB, clusteripRestore, parseProbeOutput, tupleFile,
  type ProbeRound, type ProbeTuple,
} from './clusterip-probe.ts';

const TUPLES_PER_CONFIG = 300;
const NODE_COUNTS = [2, 3, 5];
const MATRIX_IPS = ['10.99.0.10', '10.99.0.11'];


const EDGE_PORTS = [0, 1, 7, 53, 80, 255, 256, 443, 1023, 1024, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xff00, 65534, 65535];
const EDGE_ADDRS = ['0.0.0.0', '255.255.255.255', '10.0.0.1', '192.168.1.1', '172.16.0.1', '1.2.3.4', '128.0.0.0', '127.255.255.254'];
/** Weighted protocol mix: the port-hashing ones most, plus the port-less ones hashed as 0/0 (§4.1 era D). */
const PROTOS = [6, 6, 6, 17, 17, 17, 132, 132, 50, 50, 51, 51, 1, 1, 47, 47, 33, 136, 4];

const dotted = (n: number): string => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/** Varied tuples: random and edge addresses, a few sources reused with different ports, edge and random ports. */
function genTuples(seed: number, n: number, ips: readonly string[]): ProbeTuple[] {
  const r = prng(seed);
  const pool = Array.from({ length: 8 }, () => dotted(r()));
  const out: ProbeTuple[] = [];
  for (let i = 0; i < n; i++) {
    const pick = r() % 10;
    const saddr = pick < 2 ? EDGE_ADDRS[r() % EDGE_ADDRS.length]! : pick < 5 ? pool[r() % pool.length]! : dotted(r());
    const port = (): number => (r() % 4 === 0 ? EDGE_PORTS[r() % EDGE_PORTS.length]! : r() & 0xffff);
    out.push({ proto: PROTOS[r() % PROTOS.length]!, saddr, sport: port(), daddr: ips[r() % ips.length]!, dport: port() });
  }
  return out;
}

/**
 * The model's node (bucket + 1) for each tuple; 0 (NO_BUCKET + 1) for those in
 * `invalid`, which the batch marks conntrack-INVALID (§4.3).
 */
function modelNodes(tuples: readonly ProbeTuple[], hashmode: ClusteripMode, totalNodes: number, hashInit: number, invalid?: ReadonlySet<number>): number[] {
  const sel = buildSelector({ backend: 'clusterip', hashmode, totalNodes, hashInit, kernel: '6.1', endian: 'little' });
  const b = createBatch(tuples.length);
  tuples.forEach((t, i) => {
    writeTupleV4(b, i, t.proto, parseIPv4(t.saddr)!, t.sport, parseIPv4(t.daddr)!, t.dport);
    if (invalid?.has(i)) b.l4flags[i]! |= L4.CT_INVALID;
  });
  b.count = tuples.length;
  const out = new Int32Array(tuples.length);
  sel.select(b, out);
  return Array.from(out, (x) => x + sel.offset);
}

interface MatrixConfig { id: string; hashmode: ClusteripMode; totalNodes: number; hashInit: number; tuples: ProbeTuple[] }

/**
 * Compares the rounds of one configuration with the model: each tuple accepted
 * in exactly one single-node round, that round's node equal to the model's,
 * and ct mark `m<node>` in the all-nodes round. Returns mismatches (readable).
 */
function compare(cfg: { id: string; totalNodes: number; tuples: ProbeTuple[] }, expected: number[], rounds: ProbeRound[], ips: readonly string[]): string[] {
  const errs: string[] = [];
  const mine = rounds.filter((r) => r.config === cfg.id);
  const single = mine.filter((r) => r.round !== 'all');
  const all = mine.find((r) => r.round === 'all');
  if (single.length !== cfg.totalNodes || !all) return [`${cfg.id}: expected ${cfg.totalNodes} single-node rounds and one all-nodes round, got ${mine.map((r) => r.round).join(',')}`];
  for (const r of mine) {
    const want = r.round === 'all' ? Array.from({ length: cfg.totalNodes }, (_, k) => k + 1).join(',') : r.round;
    for (const ip of ips) if (r.locals[ip] !== want) errs.push(`${cfg.id} round ${r.round}: /proc for ${ip} reads '${r.locals[ip]}', wanted '${want}'`);
    if (!r.sentinelSeen) errs.push(`${cfg.id} round ${r.round}: sentinel never logged`);
    if (r.sent !== cfg.tuples.length) errs.push(`${cfg.id} round ${r.round}: sent ${r.sent} of ${cfg.tuples.length}`);
    for (const x of r.bad) errs.push(`${cfg.id} round ${r.round}: ${x}`);
  }
  cfg.tuples.forEach((t, i) => {
    const nodes = single.filter((r) => r.accepted.has(i)).map((r) => Number(r.round));
    const marks = all.accepted.get(i) ?? [];
    const desc = `${cfg.id} tuple ${i} (${t.proto} ${t.saddr}:${t.sport} -> ${t.daddr}:${t.dport}${t.opts ? ' ' + t.opts.join(',') : ''})`;
    if (expected[i] === 0) {
      // conntrack-INVALID: CLUSTERIP drops it on every node (§4.2 step 1).
      if (nodes.length !== 0 || marks.length !== 0) errs.push(`${desc}: INVALID, yet accepted by node(s) [${nodes.join(',')}], all-nodes round [${marks.join(',')}]`);
      return;
    }
    if (nodes.length !== 1 || nodes[0] !== expected[i]) errs.push(`${desc}: accepted by node(s) [${nodes.join(',')}], model says ${expected[i]}`);
    if (marks.length !== 1 || marks[0] !== `m${expected[i]}`) errs.push(`${desc}: all-nodes round logged [${marks.join(',')}], model says m${expected[i]}`);
    for (const r of single) if ((r.accepted.get(i)?.length ?? 0) > 1) errs.push(`${desc}: logged ${r.accepted.get(i)!.length} times in round ${r.round}`);
  });
  return errs;
}

// ---- the job ----

const seedRng = prng(0x6c757374);
const matrix: MatrixConfig[] = [];
for (const hashmode of CLUSTERIP_MODES) {
  for (const totalNodes of NODE_COUNTS) {
    for (const hashInit of [0, seedRng()]) {
      const id = `${hashmode}/${totalNodes}/${hashInit.toString(16)}`;
      matrix.push({ id, hashmode, totalNodes, hashInit, tuples: genTuples(seedRng(), TUPLES_PER_CONFIG, MATRIX_IPS) });
    }
  }
}

/** §4.4: writes and reads on a 3-node config whose rule says --local-node 1, with the expected answer of each step. */
const PROC_IP = '10.99.0.20';
const PROC_STEPS: { label: string; write?: string; want: string }[] = [
  { label: 'initial', want: 'read 2 1|' },
  { label: 'remove 1', write: '-1', want: 'ok 2' },
  { label: 'no local node', want: 'read 0 ' },
  { label: 'remove absent 1', write: '-1', want: 'err ENOENT 2' },
  { label: 'add 0', write: '+0', want: 'err ENOMEM 12' },
  { label: 'add 4 of 3', write: '+4', want: 'err ENOMEM 12' },
  { label: 'add 2', write: '+2', want: 'ok 2' },
  { label: 'add 2 again', write: '+2', want: 'err ENOMEM 12' },
  { label: 'add 3 with newline', write: '+3\n', want: 'ok 3' },
  { label: 'two local nodes', want: 'read 4 2,3|' },
  { label: 'remove 0', write: '-0', want: 'err ENOENT 2' },
  { label: 'remove 4 of 3', write: '-4', want: 'err ENOENT 2' },
  { label: 'no sign', write: '3', want: 'err EIO 5' },
  { label: 'bad first character', write: 'x1', want: 'err EIO 5' },
  { label: 'more than 10 bytes', write: '+12345678901', want: 'err EIO 5' },
  { label: 'not a number', write: '+abc', want: 'err EINVAL 22' },
  { label: 'trailing junk', write: '+1x', want: 'err EINVAL 22' },
  // The node number is narrowed to 16 bits (source says so; measured here): +65537 is +1, +65538 is +2.
  { label: 'add 65537 = node 1', write: '+65537', want: 'ok 6' },
  { label: 'all three', want: 'read 6 1,2,3|' },
  { label: 'add 65538 = node 2 again', write: '+65538', want: 'err ENOMEM 12' },
];

/** §4.6: config A (sourceip, 4 nodes, hash-init 0) then a second --new rule asking for something else. */
const NEW_IP = '10.99.0.30';
const NEW_CFG = { id: 'first-new-wins', hashmode: 'sourceip' as const, totalNodes: 4, hashInit: 0, tuples: genTuples(0x4e455721, TUPLES_PER_CONFIG, [NEW_IP]) };
const SECOND_NEW = `-d ${NEW_IP}/32 -i v1 -j CLUSTERIP --new --hashmode sourceip-sourceport-destport --clustermac 01:00:5E:00:00:20 --total-nodes 16 --local-node 9 --hash-init 7`;
const OTHER_MAC = `-d ${NEW_IP}/32 -i v1 -j CLUSTERIP --new --hashmode sourceip --clustermac 01:00:5E:00:00:21 --total-nodes 4 --local-node 1`;

/**
 * §4.2/§4.3: packets conntrack calls INVALID are dropped by every node; valid
 * first packets of the same flows (and a bare ACK, picked up with the default
 * nf_conntrack_tcp_loose=1) go to the model's node.
 */
const INVALID_VARIANTS: { proto: number; opts?: string[]; invalid: boolean }[] = [
  { proto: 6, invalid: false }, { proto: 6, opts: ['tcp=10'], invalid: false },
  { proto: 17, invalid: false }, { proto: 136, invalid: false }, { proto: 33, invalid: false },
  { proto: 132, invalid: false }, { proto: 1, invalid: false },
  { proto: 6, opts: ['badsum'], invalid: true }, { proto: 17, opts: ['badsum'], invalid: true },
  { proto: 136, opts: ['rfc'], invalid: true }, { proto: 33, opts: ['badsum'], invalid: true },
  { proto: 132, opts: ['badsum'], invalid: true }, { proto: 1, opts: ['badsum'], invalid: true },
  { proto: 6, opts: ['tcp=12'], invalid: true }, { proto: 6, opts: ['tcp=03'], invalid: true },
  { proto: 6, opts: ['tcp=04'], invalid: true }, { proto: 6, opts: ['tcp=11'], invalid: true },
  { proto: 6, opts: ['tcp=00'], invalid: true },
];
const INVALID_IP = '10.99.0.40';
const INVALID_CFG = (() => {
  const r = prng(0x1e7a11d);
  const tuples: ProbeTuple[] = [];
  const invalid = new Set<number>();
  for (let n = 0; n < 20; n++) {
    const saddr = dotted(r()), sport = r() & 0xffff, dport = r() & 0xffff;
    for (const v of INVALID_VARIANTS) {
      if (v.invalid) invalid.add(tuples.length);
      tuples.push({ proto: v.proto, saddr, sport, daddr: INVALID_IP, dport, ...(v.opts ? { opts: v.opts } : {}) });
    }
  }
  return { id: 'conntrack-invalid', hashmode: 'sourceip-sourceport-destport' as const, totalNodes: 3, hashInit: r(), tuples, invalid };
})();

function buildJob(): { script: string; files: Record<string, string> } {
  const files: Record<string, string> = {};
  const sh: string[] = ['set -u', GUEST_SH_LIB, 'echo "K $(uname -r)"'];
  matrix.forEach((c, n) => {
    files[`t${n}`] = tupleFile(c.tuples);
    files[`r${n}`] = clusteripRestore({ ips: MATRIX_IPS, hashmode: c.hashmode, totalNodes: c.totalNodes, hashInit: c.hashInit });
    sh.push(`cip_flush || exit 1`, `iptables-legacy-restore < r${n} || { echo "E restore ${c.id}"; exit 1; }`);
    for (let k = 1; k <= c.totalNodes; k++) sh.push(`cip_round ${c.id} ${k} "${MATRIX_IPS.join(' ')}" "${k}" t${n} || exit 1`);
    sh.push(`cip_round ${c.id} all "${MATRIX_IPS.join(' ')}" "${Array.from({ length: c.totalNodes }, (_, k) => k + 1).join(' ')}" t${n} || exit 1`);
  });

  // §4.2/§4.3 conntrack-INVALID packets.
  files.tinv = tupleFile(INVALID_CFG.tuples);
  files.rinv = clusteripRestore({ ips: [INVALID_IP], hashmode: INVALID_CFG.hashmode, totalNodes: INVALID_CFG.totalNodes, hashInit: INVALID_CFG.hashInit });
  sh.push('cip_flush || exit 1', 'iptables-legacy-restore < rinv || { echo "E restore rinv"; exit 1; }');
  for (let k = 1; k <= INVALID_CFG.totalNodes; k++) sh.push(`cip_round ${INVALID_CFG.id} ${k} "${INVALID_IP}" "${k}" tinv || exit 1`);
  sh.push(`cip_round ${INVALID_CFG.id} all "${INVALID_IP}" "1 2 3" tinv || exit 1`);
  sh.push(`echo "V $(cat /proc/sys/net/netfilter/nf_conntrack_checksum) $(cat /proc/sys/net/netfilter/nf_conntrack_tcp_loose) $(cat /proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal)"`);

  // §4.4 /proc semantics.
  files.rproc = clusteripRestore({ ips: [PROC_IP], hashmode: 'sourceip', totalNodes: 3 });
  sh.push(
    'cip_flush || exit 1',
    `echo "S before-rule $(ls /proc/net/ipt_CLUSTERIP | wc -l)"`,
    'iptables-legacy-restore < rproc || { echo "E restore rproc"; exit 1; }',
    `F=/proc/net/ipt_CLUSTERIP/${PROC_IP}`,
    `echo "S mode $(stat -c %a $F)"`,
  );
  PROC_STEPS.forEach((s, i) => {
    if (s.write === undefined) sh.push(`echo "S ${i} read $(wc -c < $F) $(tr '\\n' '|' < $F)"`);
    else sh.push(`echo "S ${i} $(qtool write $F '${s.write}')"`);
  });
  sh.push('cip_flush || exit 1', `echo "S after-flush $(ls /proc/net/ipt_CLUSTERIP | wc -l)"`);

  // §4.6 first --new wins, §4.7 the cluster MAC on the interface.
  files.tnew = tupleFile(NEW_CFG.tuples);
  files.rnew = clusteripRestore({ ips: [NEW_IP], hashmode: NEW_CFG.hashmode, totalNodes: NEW_CFG.totalNodes, hashInit: NEW_CFG.hashInit });
  const mcast = `grep -c ' v1 .* 01005e000020$' /proc/net/dev_mcast`;
  sh.push(
    `echo "F mcast-before $(${mcast})"`,
    'iptables-legacy-restore < rnew || { echo "E restore rnew"; exit 1; }',
    `echo "F mcast-with-rule $(${mcast})"`,
    `iptables-legacy -t mangle -I PREROUTING 2 ${SECOND_NEW}; echo "F second-new-rc $?"`,
    // Delete the first rule: only the one asking for 16 nodes / sourceip-sourceport-destport remains.
    `iptables-legacy -t mangle -D PREROUTING 1; echo "F delete-first-rc $?"`,
    `echo "F rules $(iptables-legacy -t mangle -S PREROUTING | grep -c CLUSTERIP) $(iptables-legacy -t mangle -S PREROUTING | grep -c 'total_nodes 16\\|total-nodes 16')"`,
    `echo "F add-9 $(qtool write /proc/net/ipt_CLUSTERIP/${NEW_IP} +9)"`,
    `iptables-legacy -t mangle -A PREROUTING ${OTHER_MAC} 2>/dev/null; echo "F other-mac-rc $?"`,
  );
  for (let k = 1; k <= NEW_CFG.totalNodes; k++) sh.push(`cip_round ${NEW_CFG.id} ${k} "${NEW_IP}" "${k}" tnew || exit 1`);
  sh.push(`cip_round ${NEW_CFG.id} all "${NEW_IP}" "1 2 3 4" tnew || exit 1`);
  // §4.7: an ARP request for the cluster IP is answered with the cluster MAC. The
  // asker needs its own namespace (v0 moves there; no probe uses v0 after this).
  sh.push(
    'unshare -n sleep 60 & NSPID=$!',
    'i=0; while [ "$(readlink /proc/$NSPID/ns/net)" = "$(readlink /proc/self/ns/net)" ] && [ $i -lt 50 ]; do usleep 20000; i=$((i + 1)); done',
    `ip link set v0 netns $NSPID && ip addr add ${NEW_IP}/24 dev v1`,
    `echo "F arp $(nsenter -t $NSPID -n sh -c 'ip link set v0 up; ip addr add 10.99.0.31/24 dev v0; arping -c 1 -w 3 -I v0 ${NEW_IP}' | grep '^Unicast reply from ${NEW_IP} ' | cut -d'[' -f2 | cut -d']' -f1)"`,
    'kill $NSPID',
  );
  sh.push('cip_flush || exit 1', `echo "F mcast-after-flush $(${mcast})"`, `echo "F proc-after-flush $(ls /proc/net/ipt_CLUSTERIP | wc -l)"`);
  sh.push(`echo "D $(dmesg | grep -c 'ipt_CLUSTERIP: unknown protocol') $(dmesg | grep -c 'ipt_CLUSTERIP is deprecated')"`);
  return { script: sh.join('\n') + '\n', files };
}

describe('CLUSTERIP on the real Debian 6.1 kernel under qemu', () => {
  let run: GuestResult;
  let rounds: ProbeRound[];
  const tagged = new Map<string, string>();

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('clusterip.kernel.test.ts must run as root (qemu image build with apt-get, kernel-level test)');
    const job = buildJob();
    const t0 = Date.now();
    run = await runGuest({ ...job, timeoutMs: 600_000 });
    const m = run.image;
    console.log(`[qemu] ${m.kernelPackage} ${m.kernelPackageVersion}: boot ${run.bootMs} ms, whole run ${run.elapsedMs} ms (job ${run.elapsedMs - (run.bootMs ?? 0)} ms), incl. image ${Date.now() - t0 - run.elapsedMs} ms`);
    if (!run.ok) {
      throw new Error(`guest run failed (exit ${run.exitCode}, timed out: ${run.timedOut})\n--- output tail\n${run.output.slice(-3000)}\n--- console tail\n${run.console.slice(-3000)}`);
    }
    rounds = parseProbeOutput(run.output);
    for (const line of run.output.split('\n')) {
      const f = line.split(' ');
      // "S <step> <answer>", "F <check> <answer>"; "K|V|D <values>" (kernel, conntrack sysctls, dmesg counts).
      if (f[0] === 'S' || f[0] === 'F') tagged.set(`${f[0]} ${f[1]}`, f.slice(2).join(' '));
      else if (f[0] === 'K' || f[0] === 'V' || f[0] === 'D') tagged.set(f[0], f.slice(1).join(' '));
    }
  }, 1_200_000);

  it('boots the 6.1 kernel that still has ipt_CLUSTERIP', () => {
    expect(tagged.get('K')).toMatch(/^6\.1\.0-\d+-amd64$/);
    expect(run.image.modules).toContain('kernel/net/ipv4/netfilter/ipt_CLUSTERIP.ko');
    // The first CLUSTERIP rule in a netns logs the deprecation (§4.5); ICMP/GRE log "unknown protocol" (§4.1).
    const [unknown, deprecated] = (tagged.get('D') ?? '').split(' ').map(Number);
    expect(deprecated).toBeGreaterThanOrEqual(1);
    expect(unknown).toBeGreaterThanOrEqual(1);
  });

  it('accepts every tuple on exactly the node the model predicts (3 hash modes x 2,3,5 nodes x 2 hash-inits)', () => {
    const errs: string[] = [];
    let compared = 0;
    for (const c of matrix) {
      const expected = modelNodes(c.tuples, c.hashmode, c.totalNodes, c.hashInit);
      // A model that answers the same node for everything would pass a careless check; make sure the rounds discriminate.
      expect(new Set(expected).size).toBe(c.totalNodes);
      errs.push(...compare(c, expected, rounds, MATRIX_IPS));
      compared += c.tuples.length;
    }
    console.log(`[qemu] compared ${compared} tuples in ${matrix.length} configurations, ${rounds.filter((r) => matrix.some((c) => c.id === r.config)).length} probe rounds: ${errs.length} mismatches`);
    expect(errs.slice(0, 20)).toEqual([]);
    expect(compared).toBe(matrix.length * TUPLES_PER_CONFIG);
  });

  it('drops conntrack-INVALID packets on every node; valid first packets and a bare ACK hash normally (§4.2, §4.3)', () => {
    // The defaults the expectations rest on (§4.3).
    expect(tagged.get('V')).toBe('1 1 0');
    const expected = modelNodes(INVALID_CFG.tuples, INVALID_CFG.hashmode, INVALID_CFG.totalNodes, INVALID_CFG.hashInit, INVALID_CFG.invalid);
    expect(expected.filter((n) => n === 0).length).toBe(INVALID_CFG.invalid.size);
    const errs = compare(INVALID_CFG, expected, rounds, [INVALID_IP]);
    console.log(`[qemu] compared ${INVALID_CFG.tuples.length} tuples (${INVALID_CFG.invalid.size} conntrack-INVALID: bad TCP/UDP/DCCP/SCTP/ICMP checksums, RFC 3828 UDP-Lite, TCP SYN|ACK, SYN|FIN, RST, FIN|ACK, no flags): ${errs.length} mismatches`);
    expect(errs.slice(0, 20)).toEqual([]);
  });

  it('/proc/net/ipt_CLUSTERIP/<ip>: +k/-k, empty file without local nodes, ENOMEM/ENOENT/EIO (§4.4)', () => {
    expect(tagged.get('S before-rule')).toBe('0');
    expect(tagged.get('S mode')).toBe('600');
    const got = PROC_STEPS.map((s, i) => `${s.label}: ${tagged.get(`S ${i}`)}`);
    const want = PROC_STEPS.map((s) => `${s.label}: ${s.want}`);
    console.log(`[qemu] compared ${PROC_STEPS.length} /proc reads and writes`);
    expect(got).toEqual(want);
    // The file disappears with the last rule for its IP (§4.4).
    expect(tagged.get('S after-flush')).toBe('0');
  });

  it('the first --new wins: a later --new for the same IP is accepted and ignored; the cluster MAC joins v1 and answers ARP (§4.6, §4.7)', () => {
    expect(tagged.get('F mcast-before')).toBe('0');
    expect(tagged.get('F mcast-with-rule')).toBe('1');
    expect(tagged.get('F second-new-rc')).toBe('0');
    expect(tagged.get('F delete-first-rc')).toBe('0');
    // Only the ignored rule is left, and iptables -S still shows its 16 nodes.
    expect(tagged.get('F rules')).toBe('1 1');
    // The live config has 4 nodes, so node 9 is out of range.
    expect(tagged.get('F add-9')).toBe('err ENOMEM 12');
    // A --new with a different cluster MAC is refused (EINVAL; iptables exits non-zero).
    expect(tagged.get('F other-mac-rc')).not.toBe('0');
    const expected = modelNodes(NEW_CFG.tuples, NEW_CFG.hashmode, NEW_CFG.totalNodes, NEW_CFG.hashInit);
    const errs = compare(NEW_CFG, expected, rounds, [NEW_IP]);
    // And it really is not the second rule's configuration.
    const ignored = modelNodes(NEW_CFG.tuples, 'sourceip-sourceport-destport', 16, 7);
    const differ = ignored.filter((n, i) => n !== expected[i]).length;
    console.log(`[qemu] compared ${NEW_CFG.tuples.length} tuples against the first --new's config (${differ} of them would differ under the ignored one): ${errs.length} mismatches`);
    expect(differ).toBeGreaterThan(NEW_CFG.tuples.length / 2);
    expect(errs.slice(0, 20)).toEqual([]);
    expect(tagged.get('F arp')).toBe('01:00:5e:00:00:20');
    expect(tagged.get('F mcast-after-flush')).toBe('0');
    expect(tagged.get('F proc-after-flush')).toBe('0');
  });
});
