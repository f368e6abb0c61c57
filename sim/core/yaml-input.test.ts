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
    expect(e.message).toContain("c.yaml:2: cluster: unknown key 'extra'");
    expect(e.message).toMatch(/c\.yaml:5: nodes\[0\]\.owns\[1\]: .* \(value: "x"\)/);
  });

  it('fail() and a YAML syntax error carry the line', () => {
    const y = new YamlInput(text, 'c.yaml');
    expect(() => y.fail(['cluster', 'ip'], 'not ours')).toThrow(/cluster\.ip: not ours \(value: "10\.0\.0\.1"\)/);
    try { y.fail(['cluster', 'ip'], 'x'); } catch (e) { expect((e as DataError).message).toContain('c.yaml:2'); }
    expect(() => new YamlInput('a: [1, 2\nb: 3\n', 'bad.yaml')).toThrow(/bad\.yaml:\d+.*YAML/);
  });
});
