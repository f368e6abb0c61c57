#!/bin/sh
# clusterip-sim over GNU parallel and ssh: every shard runs on the host that
# holds its capture file (nothing is copied), each partial comes back as its
# job's standard output, and one `clusterip-sim merge` gives the result a
# single run over all the files would give.
#
#   shard-over-ssh.sh INVENTORY OUTDIR SIMULATE-OPTION...
#   clusterip-sim merge OUTDIR/shard-*.part --json > result.json
#
# INVENTORY: one line per capture file, in time order (the files are one
# capture cut in pieces), sshlogin TAB path on that host:
#   root@cap1	/srv/pcap/edge-2026-12-01T00.pcap
#   root@cap1	/srv/pcap/edge-2026-12-01T01.pcap
#   root@cap2	/srv/pcap/edge-2026-12-01T02.pcap
# One shard per file: shard k is file k and runs on its host (GNU parallel
# hostgroups: job "k@hG" may only run on the sshlogins of group hG). Paths
# must not contain whitespace. Every host needs the same clusterip-sim version
# (on its PATH, or CLUSTERIP_SIM=/its/path) and any --config file at the same
# path. Extra ssh options: PARALLEL_SSH="ssh -i KEY -o UserKnownHostsFile=FILE".
# OUTDIR/joblog says which host ran which shard.
set -eu
inv=$1 out=$2
shift 2
sim=${CLUSTERIP_SIM:-clusterip-sim}
N=$(grep -c . "$inv")
mkdir -p "$out"
# Hostgroup hG for the G-th distinct sshlogin; -S @hG/LOGIN for each.
cut -f1 "$inv" | awk '!seen[$0]++ { print "-S\n@h" ++n "/" $0 }' > "$out/sshlogins"
cut -f1 "$inv" | awk '!g[$0] { g[$0] = ++n } { print NR - 1 "@h" g[$0] }' > "$out/jobs"
cut -f2 "$inv" > "$out/paths"
# -q keeps each option one word on the remote shell (--compare '--total-nodes 5' stays whole).
# shellcheck disable=SC2046  # the logins and the paths are lists of words on purpose
parallel -q --hgrp $(cat "$out/sshlogins") --joblog "$out/joblog" --results "$out/shard-{}.part" --halt now,fail=1 \
  "$sim" simulate "$@" --pcap $(cat "$out/paths") --shard "{}/$N" --partial - :::: "$out/jobs"
