/**
 * Loads the golden vectors recorded from real kernels (../shared/vectors/) and
 * maps each configuration onto a SelectorSpec. Shared by the vector test and
 * the hash bench. The files are never edited; a disagreement is our bug.
 */
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseIPv4 } from '../sim/core/addr.ts';
import type { SelectorSpec } from '../sim/select/selector.ts';

export const VECTOR_HEADER = 'backend,kernel,arch,mode,nodes,seed,offset,proto,saddr,sport,daddr,dport,result';

/**
 * Row counts from ../shared/vectors/README.md (x86_64, little-endian) and its
 * "Big-endian vectors" section (s390x/, Debian's 6.1.176 s390x kernel): a
 * truncated or filtered read must fail.
 */
export const VECTOR_FILES: Record<string, { rows: number; perConfig: Record<string, number> | number }> = {
  'clusterip.csv': { rows: 36864, perConfig: 2048 },
  'xt_cluster.csv': { rows: 18488, perConfig: 2311 },
  'nft-jhash-saddr.csv': { rows: 20826, perConfig: 2314 },
  'nft-jhash-saddr-sport.csv': { rows: 17984, perConfig: { tcp: 1150, udp: 1098 } },
  'nft-jhash-saddr-sport-dport.csv': { rows: 17984, perConfig: { tcp: 1150, udp: 1098 } },
  'nft-jhash-saddr-daddr-sport-dport.csv': { rows: 17984, perConfig: { tcp: 1150, udp: 1098 } },
  's390x/clusterip.csv': { rows: 55296, perConfig: 2048 },
  's390x/xt_cluster.csv': { rows: 20826, perConfig: 2314 },
  's390x/nft-jhash-saddr.csv': { rows: 13884, perConfig: 2314 },
  's390x/nft-jhash-saddr-sport.csv': { rows: 13488, perConfig: { tcp: 1150, udp: 1098 } },
  's390x/nft-jhash-saddr-sport-dport.csv': { rows: 13488, perConfig: { tcp: 1150, udp: 1098 } },
  's390x/nft-jhash-saddr-daddr-sport-dport.csv': { rows: 13488, perConfig: { tcp: 1150, udp: 1098 } },
};

/** Every row of every file: 130,130 little-endian and 130,470 big-endian. */
export const VECTOR_ROWS = Object.values(VECTOR_FILES).reduce((n, f) => n + f.rows, 0);

/** The CPU byte order behind each `arch` the recordings name. */
const ARCH_ENDIAN: Record<string, 'little' | 'big'> = { x86_64: 'little', s390x: 'big' };

export function vectorsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = process.env.CLUSTERIP_SIM_VECTORS ?? resolve(here, '../../shared/vectors');
  if (!existsSync(dir)) throw new Error(`golden vectors not found at ${dir} (set CLUSTERIP_SIM_VECTORS)`);
  return dir;
}

export interface VectorConfig {
  file: string;
  key: string;
  backend: string;
  endian: 'little' | 'big';
  kernel: string;
  mode: string;
  nodes: number;
  seed: number;
  offset: number;
  spec: SelectorSpec;
  /** Rows of this configuration, in file order. */
  lines: number[];
  proto: number[];
  saddr: number[];
  sport: number[];
  daddr: number[];
  dport: number[];
  /** Expected bucket (result - offset). */
  bucket: number[];
}

export function loadVectorFile(name: string): { configs: VectorConfig[]; rows: number } {
  const text = readFileSync(join(vectorsDir(), name), 'utf8');
  const lines = text.split('\n');
  if (lines[0] !== VECTOR_HEADER) throw new Error(`${name}:1: unexpected header '${lines[0]}'`);
  const byKey = new Map<string, VectorConfig>();
  let rows = 0;
  for (let ln = 1; ln < lines.length; ln++) {
    const line = lines[ln]!;
    if (line === '') continue;
    const f = line.split(',');
    if (f.length !== 13) throw new Error(`${name}:${ln + 1}: expected 13 fields, got ${f.length}`);
    const [backend, kernel, arch, mode, nodesS, seedS, offsetS, protoS, saddrS, sportS, daddrS, dportS, resultS] = f as [string, string, string, string, string, string, string, string, string, string, string, string, string];
    const endian = ARCH_ENDIAN[arch];
    if (!endian) throw new Error(`${name}:${ln + 1}: arch ${arch} not modelled`);
    const key = [backend, kernel, arch, mode, nodesS, seedS, offsetS].join(',');
    let cfg = byKey.get(key);
    if (!cfg) {
      const nodes = Number(nodesS), seed = parseInt(seedS, 16), offset = Number(offsetS);
      let spec: SelectorSpec;
      if (backend === 'clusterip') spec = { backend: 'clusterip', hashmode: mode as 'sourceip', totalNodes: nodes, hashInit: seed, kernel, endian };
      else if (backend === 'xt_cluster') spec = { backend: 'xt_cluster', totalNodes: nodes, hashSeed: seed, kernel, endian };
      else if (backend === 'nft-jhash') spec = { backend: 'nft', expr: `jhash ${mode} mod ${nodes} seed ${seedS} offset ${offset}`, kernel, endian };
      else throw new Error(`${name}:${ln + 1}: unknown backend ${backend}`);
      cfg = { file: name, key, backend, endian, kernel, mode, nodes, seed, offset, spec, lines: [], proto: [], saddr: [], sport: [], daddr: [], dport: [], bucket: [] };
      byKey.set(key, cfg);
    }
    const sa = parseIPv4(saddrS), da = parseIPv4(daddrS);
    if (sa === null || da === null) throw new Error(`${name}:${ln + 1}: bad address`);
    cfg.lines.push(ln + 1);
    cfg.proto.push(Number(protoS));
    cfg.saddr.push(sa);
    cfg.sport.push(Number(sportS));
    cfg.daddr.push(da);
    cfg.dport.push(Number(dportS));
    cfg.bucket.push(Number(resultS) - cfg.offset);
    rows++;
  }
  return { configs: [...byKey.values()], rows };
}
