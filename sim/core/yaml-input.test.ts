import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fmtPath, parseKeyPath, YamlInput } from './yaml-input.ts';
import { DataError } from './errors.ts';

describe('YamlInput: errors in the file\'s own words', () => {
  const text = 'cluster:\n  ip: 10.0.0.1\n  extra: 1\nnodes:\n  - { name: a, owns: [1, x] }\n';

  it('key paths print as written and parse back', () => {
    expect(fmtPath(['nodes', 0, 'owns', 1])).toBe('nodes[0].owns[1]');
    expect(fmtPath([])).toBe('(top level)');
    expect(parseKeyPath('nodes[0].owns[1]')).toEqual(['nodes', 0, 'owns', 1]);
  });

  it('a schema failure names file:line, the key path, the value, and unknown keys in plain words', () => {
    const y = new YamlInput(text, 'c.yaml');
    const schema = z.object({ cluster: z.object({ ip: z.string() }).strict(), nodes: z.array(z.object({ name: z.string(), owns: z.array(z.number()) })) });
    const r = schema.safeParse(y.data());
    expect(r.success).toBe(false);
    const e = y.schemaError('test config', r.error!.issues);
    expect(e).toBeInstanceOf(DataError);
    // On the unknown key's own line (3), not its parent mapping's.
    expect(e.message).toContain("c.yaml:3: cluster: unknown key 'extra'");
    expect(e.message).toMatch(/c\.yaml:5: nodes\[0\]\.owns\[1\]: .* \(value: "x"\)/);
  });

  it('a misspelt required key: one line, on the key, with "did you mean"', () => {
    const y = new YamlInput('cluster:\n  ip: 10.0.0.1\n  total_node: 3\nnodes:\n  - { name: a, onws: [1] }\n  - { name: b, owns: [2], colour: red }\n', 'm.yaml');
    const schema = z.object({ cluster: z.object({ ip: z.string(), total_nodes: z.number() }).strict(), nodes: z.array(z.object({ name: z.string(), owns: z.array(z.number()) }).strict()) });
    const e = y.schemaError('test config', schema.safeParse(y.data()).error!.issues);
    expect(e.message.split('\n').slice(1).map((l) => l.trim())).toEqual([
      "m.yaml:3: cluster: unknown key 'total_node' (did you mean 'total_nodes'?)",
      "m.yaml:5: nodes[0]: unknown key 'onws' (did you mean 'owns'?)",
      "m.yaml:6: nodes[1]: unknown key 'colour'",
    ]);
  });

  it('fail() and a YAML syntax error carry the line', () => {
    const y = new YamlInput(text, 'c.yaml');
    expect(() => y.fail(['cluster', 'ip'], 'not ours')).toThrow(/cluster\.ip: not ours \(value: "10\.0\.0\.1"\)/);
    try { y.fail(['cluster', 'ip'], 'x'); } catch (e) { expect((e as DataError).message).toContain('c.yaml:2'); }
    expect(() => new YamlInput('a: [1, 2\nb: 3\n', 'bad.yaml')).toThrow(/bad\.yaml:\d+.*YAML/);
  });
});
