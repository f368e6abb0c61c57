/**
 * Scripts read our JSON: every document says which schema it follows
 * (`schema_version`, sim/core/version.ts), and every key is snake_case, the
 * selector spec's too (camelCase keys came from printing the internal spec).
 */
import { describe, expect, it } from 'vitest';
import { runCli } from '../test/cli.ts';
import { SCHEMA_VERSION } from '../sim/core/version.ts';
import { specFromJson, specJson, type SelectorSpec } from '../sim/core/spec.ts';

/** Every key path with a camelCase hump (a lower-case letter followed by an upper-case one). */
function camelKeys(x: unknown, path = '$', out: string[] = []): string[] {
  if (Array.isArray(x)) x.forEach((v, i) => camelKeys(v, `${path}[${i}]`, out));
  else if (x && typeof x === 'object') {
    for (const [k, v] of Object.entries(x)) {
      if (/[a-z][A-Z]/.test(k)) out.push(`${path}.${k}`);
      camelKeys(v, `${path}.${k}`, out);
    }
  }
  return out;
}

describe('JSON documents', () => {
  it.each([
    ['simulate', ['simulate', '--json', '--workers', '0']],
    ['failover', ['failover', '--json', '--workers', '0']],
    ['hash', ['hash', '--json', '--backend', 'clusterip', '--hashmode', 'sourceip', '--total-nodes', '3', 'tcp', '10.0.0.1:1', '192.0.2.10:80']],
  ])('%s --json: a schema_version and snake_case keys only', async (_name, argv) => {
    const r = await runCli(argv);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { schema_version?: number };
    expect(doc.schema_version).toBe(SCHEMA_VERSION);
    expect(camelKeys(doc)).toEqual([]);
  });

  it('the spec goes to JSON and back unchanged', () => {
    const specs: SelectorSpec[] = [
      { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 5, hashInit: 0x1234, kernel: '6.1', endian: 'big' },
      { backend: 'xt_cluster', totalNodes: 3, hashSeed: 7, kernel: '6.18', endian: 'little' },
      { backend: 'nft', expr: 'jhash ip saddr mod 4 seed 0x1 offset 1', kernel: '6.18', endian: 'little' },
    ];
    for (const s of specs) {
      expect(camelKeys(specJson(s))).toEqual([]);
      expect(specFromJson(specJson(s))).toEqual(s);
    }
    expect(specJson(specs[0]!)).toMatchObject({ total_nodes: 5, hash_init: 0x1234 });
  });
});
