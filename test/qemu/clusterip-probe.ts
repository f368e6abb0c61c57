/**
 * Building blocks for asking the real ipt_CLUSTERIP module (inside runGuest)
 * which node accepts which packet, the way the golden vectors were recorded
 * (kernel-semantics.md §11.2):
 *
 *   - rules (`clusteripRestore`): in `mangle PREROUTING`, one `CLUSTERIP --new`
 *     rule per cluster IP on `-i v1`, then every surviving packet goes, by its
 *     ct mark, to its own chain `M<mark>`: NFLOG (prefix `m<mark>`) then DROP.
 *     NFLOG is non-terminal, so one chain per mark keeps each packet logged
 *     once; dropping in PREROUTING means no conntrack is ever confirmed, so
 *     every round starts from the same state. A sentinel address is logged
 *     with prefix `s` so the reader knows when every answer is in.
 *   - rounds (`GUEST_SH_LIB`'s `cip_round`): make exactly the given nodes
 *     local on every cluster IP through /proc, inject one frame per tuple to
 *     the cluster MAC (so it arrives as PACKET_MULTICAST), read NFLOG.
 *   - `parseProbeOutput` turns the guest's output into rounds.
 *
 * With one local node per round, the packets logged in round k are exactly
 * those node k accepts; the round with every node local reads `ct->mark`,
 * which CLUSTERIP sets to the node on NEW conntracks (§4.2), an independent
 * second readout.
 */

export const CLUSTER_MAC = '01:00:5E:00:00:20';
/** A non-cluster address; its frame is sent last and logged with prefix `s`. */
export const SENTINEL_IP = '10.200.0.1';
export const NFLOG_GROUP = 5;

export interface ProbeTuple {
  proto: number;
  /** Dotted IPv4. */
  saddr: string;
  sport: number;
  daddr: string;
  dport: number;
  /** qtool variants, e.g. ['tcp=12'] (SYN|ACK), ['badsum'], ['rfc'] (UDP-Lite per RFC 3828); default: a valid first packet. */
  opts?: string[];
}

/** The tuple file `qtool probe` reads: "proto saddr sport daddr dport" per line; line i goes out with IP ID i. */
export function tupleFile(tuples: readonly ProbeTuple[]): string {
  if (tuples.length > 65535) throw new RangeError(`at most 65535 tuples per probe (IP ID 65535 is the sentinel's), got ${tuples.length}`);
  return tuples.map((t) => `${t.proto} ${t.saddr} ${t.sport} ${t.daddr} ${t.dport}${t.opts?.length ? ' ' + t.opts.join(',') : ''}`).join('\n') + '\n';
}

export interface ClusteripRuleSet {
  /** Cluster IPs; one `--new` rule each, all with the same parameters. */
  ips: readonly string[];
  hashmode: 'sourceip' | 'sourceip-sourceport' | 'sourceip-sourceport-destport';
  totalNodes: number;
  /** The node given to `--local-node` (the rule needs one; rounds rewrite the set through /proc). */
  localNode?: number;
  hashInit?: number;
  mac?: string;
}

/** `iptables-legacy-restore` input for the mangle table (replaces it; flush and wait first, §4.6). */
export function clusteripRestore(r: ClusteripRuleSet): string {
  const marks = Math.max(r.totalNodes, 1);
  const lines = ['*mangle', ':PREROUTING ACCEPT [0:0]', ':CIPLOG - [0:0]', ':M0 - [0:0]'];
  for (let k = 1; k <= marks; k++) lines.push(`:M${k} - [0:0]`);
  for (const ip of r.ips) {
    lines.push(`-A PREROUTING -d ${ip}/32 -i v1 -j CLUSTERIP --new --hashmode ${r.hashmode} --clustermac ${r.mac ?? CLUSTER_MAC}` +
      ` --total-nodes ${r.totalNodes} --local-node ${r.localNode ?? 1} --hash-init ${(r.hashInit ?? 0) >>> 0}`);
  }
  for (const ip of r.ips) lines.push(`-A PREROUTING -d ${ip}/32 -i v1 -j CIPLOG`);
  lines.push(`-A PREROUTING -d ${SENTINEL_IP}/32 -j NFLOG --nflog-group ${NFLOG_GROUP} --nflog-prefix s --nflog-threshold 1`);
  lines.push('-A PREROUTING -i v1 -j DROP');
  for (let k = 1; k <= marks; k++) lines.push(`-A CIPLOG -m connmark --mark ${k} -j M${k}`);
  lines.push('-A CIPLOG -j M0');
  for (let k = 0; k <= marks; k++) {
    lines.push(`-A M${k} -j NFLOG --nflog-group ${NFLOG_GROUP} --nflog-prefix m${k} --nflog-threshold 1`, `-A M${k} -j DROP`);
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/**
 * busybox sh functions; prepend to a guest script.
 *   cip_flush                 flush mangle, wait (bounded) until /proc/net/ipt_CLUSTERIP is empty
 *   cip_setlocal "IPS" "NODES" make exactly NODES local on each IP; prints "L <ip> <file content>"
 *   cip_round CFG NAME "IPS" "NODES" TUPLES
 *                             prints "R CFG NAME", the L lines, then qtool probe's A/X/P lines
 * Each returns non-zero (after printing "E <why>") on failure.
 */
export const GUEST_SH_LIB = `
CIP_MAC=${CLUSTER_MAC.toLowerCase()}
CIP_SENT=${SENTINEL_IP}
CIP_GROUP=${NFLOG_GROUP}
cip_flush() {
  iptables-legacy -t mangle -F && iptables-legacy -t mangle -X || { echo "E flush: iptables failed"; return 1; }
  i=0
  while [ -n "$(ls /proc/net/ipt_CLUSTERIP 2>/dev/null)" ]; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "E flush: /proc/net/ipt_CLUSTERIP not empty after 5 s"; return 1; }
    usleep 50000
  done
}
cip_setlocal() {
  for ip in $1; do
    f=/proc/net/ipt_CLUSTERIP/$ip
    [ -e "$f" ] || { echo "E setlocal: no $f"; return 1; }
    for k in $(tr ',' ' ' < "$f"); do qtool write "$f" "-$k" > /dev/null || { echo "E setlocal: $f -$k"; return 1; }; done
    for k in $2; do qtool write "$f" "+$k" > /dev/null || { echo "E setlocal: $f +$k"; return 1; }; done
    echo "L $ip $(tr '\\n' ' ' < "$f")"
  done
}
cip_round() {
  echo "R $1 $2"
  cip_setlocal "$3" "$4" || return 1
  qtool probe v0 $CIP_MAC "$5" $CIP_GROUP $CIP_SENT || { echo "E probe $1 $2 failed"; return 1; }
}
`;

export interface ProbeRound {
  config: string;
  round: string;
  /** /proc content per cluster IP after the writes (e.g. "2" or "1,2,3"). */
  locals: Record<string, string>;
  /** Tuple index -> NFLOG prefixes it was logged with (normally one, `m<ctmark>`). */
  accepted: Map<number, string[]>;
  /** Logged packets that did not match their tuple (X lines). */
  bad: string[];
  sent: number;
  logged: number;
  sentinelSeen: boolean;
}

/** Parses R/L/A/X/P lines; other lines are ignored. Throws on E lines (the guest reported a failure). */
export function parseProbeOutput(output: string): ProbeRound[] {
  const rounds: ProbeRound[] = [];
  let cur: ProbeRound | null = null;
  const lines = output.split('\n');
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln]!;
    const f = line.split(' ');
    const where = `guest output line ${ln + 1}`;
    switch (f[0]) {
      case 'E': throw new Error(`${where}: ${line}`);
      case 'R':
        cur = { config: f[1]!, round: f[2]!, locals: {}, accepted: new Map(), bad: [], sent: -1, logged: -1, sentinelSeen: false };
        rounds.push(cur);
        break;
      case 'L': if (cur) cur.locals[f[1]!] = (f[2] ?? '').trim(); break;
      case 'A': {
        if (!cur) throw new Error(`${where}: A line before any R line`);
        const i = Number(f[1]);
        const list = cur.accepted.get(i);
        if (list) list.push(f[2] ?? ''); else cur.accepted.set(i, [f[2] ?? '']);
        break;
      }
      case 'X': if (cur) cur.bad.push(line); break;
      case 'P': {
        if (!cur) throw new Error(`${where}: P line before any R line`);
        const m = /sent=(\d+) logged=(\d+)/.exec(line);
        if (!m) throw new Error(`${where}: bad summary '${line}'`);
        cur.sent = Number(m[1]);
        cur.logged = Number(m[2]);
        cur.sentinelSeen = !line.includes('sentinel-missing');
        break;
      }
    }
  }
  return rounds;
}
