/**
 * Writes owner-set changes back into the cluster YAML, keeping its comments
 * and layout (yaml's Document API), so that a `move --save` becomes the new
 * configuration: `status` then shows no drift and the next `apply` keeps it.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument } from 'yaml';
import { DataError } from '../sim/core/errors.ts';
import type { ClusterConfig } from '../sim/core/cluster-config.ts';

/** The config's owner sets after moving node number `k` to node `to` (every other node gives it up). */
export function ownersAfterMove(c: ClusterConfig, k: number, to: string): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const n of c.nodes) {
    const rest = n.owns.filter((x) => x !== k);
    m.set(n.name, n.name === to ? [...rest, k].sort((a, b) => a - b) : rest);
  }
  return m;
}

/** Replaces `owns` of the named nodes in the YAML text; other text (comments included) stays. */
export function setOwnersInText(text: string, file: string, owners: ReadonlyMap<string, readonly number[]>): string {
  const doc = parseDocument(text);
  const nodes = doc.get('nodes', true);
  if (!isSeq(nodes)) throw new DataError(file, "no 'nodes' list to update");
  for (const item of nodes.items) {
    if (!isMap(item)) continue;
    const name = item.get('name');
    if (typeof name !== 'string' || !owners.has(name)) continue;
    const seq = doc.createNode([...owners.get(name)!]);
    seq.flow = true;
    item.set('owns', seq);
  }
  return doc.toString();
}

/** Rewrites the file atomically (write a sibling, then rename). */
export function saveOwners(file: string, owners: ReadonlyMap<string, readonly number[]>): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(file, (e as Error).message);
  }
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, setOwnersInText(text, file, owners));
  renameSync(tmp, file);
}
