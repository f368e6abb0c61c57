import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkConfig, parseConfig } from '../sim/core/cluster-config.ts';
import { ownersAfterMove, setOwnersInText } from './config-edit.ts';

describe('writing a move back into the config', () => {
  const file = join(import.meta.dirname, 'examples/cluster.yaml');
  const text = readFileSync(file, 'utf8');
  const c = parseConfig(text, file).config;

  it('moves node number 1 to node3, keeps every comment and every other line', () => {
    const owners = ownersAfterMove(c, 1, 'node3');
    expect([...owners]).toEqual([['node1', []], ['node2', [2]], ['node3', [1, 3]]]);
    const out = setOwnersInText(text, file, owners);
    const again = parseConfig(out, file);
    expect(again.config.nodes.map((n) => n.owns)).toEqual([[], [2], [1, 3]]);
    expect(again.config.nodes.map((n) => n.host)).toEqual(c.nodes.map((n) => n.host));
    for (const comment of text.split('\n').filter((l) => l.trim().startsWith('#'))) expect(out).toContain(comment.trim());
    expect(out).toContain('# this machine');
    expect(checkConfig(again.config)).toEqual([]);
  });
});
