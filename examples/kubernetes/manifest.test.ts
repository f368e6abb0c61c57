/**
 * The Kubernetes example: every document validates against the Kubernetes
 * API schema (the kubernetes-models package's validators, generated from
 * the API's OpenAPI spec), the shard Job is an Indexed Job whose command
 * takes its shard from JOB_COMPLETION_INDEX, and the Jobs' own shell
 * scripts, run here for every index over a local /data, merge to the single
 * run's result. No cluster needed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { Job } from 'kubernetes-models/batch/v1';
import { ConfigMap, PersistentVolumeClaim } from 'kubernetes-models/v1';
import { parseConfig } from '../../sim/core/cluster-config.ts';
import { runCli } from '../../test/cli.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const MANIFEST = join(HERE, 'clusterip-sim.yaml');
type Doc = any;
const docs: Doc[] = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((d) => d.toJS() as Doc);
const byName = (kind: string, name: string): Doc => docs.find((d) => d.kind === kind && d.metadata.name === name);
const MODELS: Record<string, (d: Doc) => { validate(): void }> = {
  Job: (d) => new Job(d),
  ConfigMap: (d) => new ConfigMap(d),
  PersistentVolumeClaim: (d) => new PersistentVolumeClaim(d),
};

describe('examples/kubernetes/clusterip-sim.yaml', () => {
  it('every document validates against the Kubernetes schema, and the validator does refuse a broken one', () => {
    expect(docs.map((d) => d.kind)).toEqual(['PersistentVolumeClaim', 'ConfigMap', 'Job', 'Job']);
    for (const d of docs) expect(() => MODELS[d.kind]!(d).validate(), `${d.kind} ${d.metadata.name}`).not.toThrow();
    const broken = structuredClone(byName('Job', 'clusterip-sim-shards'));
    broken.spec.completionMode = 'Index';
    expect(() => new Job(broken).validate()).toThrow(/completionMode/);
    const noImage = structuredClone(byName('Job', 'clusterip-sim-merge'));
    delete noImage.spec.template.spec.containers[0].name;
    expect(() => new Job(noImage).validate()).toThrow(/name/);
  });

  it('is an Indexed Job of N shards, each taking --shard from JOB_COMPLETION_INDEX, on the shared volume', () => {
    const j = byName('Job', 'clusterip-sim-shards');
    expect(j.spec.completionMode).toBe('Indexed');
    const script: string = j.spec.template.spec.containers[0].args[0];
    const n = Number(/--shard "\$\{JOB_COMPLETION_INDEX\}\/(\d+)"/.exec(script)?.[1]);
    expect(n).toBe(j.spec.completions);
    expect(j.spec.parallelism).toBe(n);
    const merge: string = byName('Job', 'clusterip-sim-merge').spec.template.spec.initContainers[0].args[0];
    expect(merge).toContain(`-eq ${n} ]`);
    for (const job of [j, byName('Job', 'clusterip-sim-merge')]) {
      expect(job.spec.template.spec.volumes.find((v: Doc) => v.name === 'data').persistentVolumeClaim.claimName).toBe('clusterip-sim-data');
    }
    expect(byName('PersistentVolumeClaim', 'clusterip-sim-data').spec.accessModes).toContain('ReadWriteMany');
    // The cluster config it ships is one `glue apply` would take.
    expect(parseConfig(byName('ConfigMap', 'clusterip-sim-config').data['cluster.yaml'], 'cluster.yaml').problems).toEqual([]);
  });

  describe('its scripts, run for every index over a local /data', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cipsim-k8s-'));
    const data = join(dir, 'data'), config = join(dir, 'config'), bin = join(dir, 'bin');
    beforeAll(async () => {
      for (const d of [join(data, 'captures'), config, bin]) mkdirSync(d, { recursive: true });
      const one = join(dir, 'one.pcap');
      expect((await runCli(['gen', 'default', '--out', one, '--packets', '12000', '--snaplen', '96'])).code).toBe(0);
      execFileSync('editcap', ['-F', 'pcap', '-c', '1000', one, join(data, 'captures', 'edge.pcap')]);
      writeFileSync(join(config, 'cluster.yaml'), byName('ConfigMap', 'clusterip-sim-config').data['cluster.yaml']);
      writeFileSync(join(bin, 'clusterip-sim'), `#!/bin/sh\nexec node ${join(REPO, 'bin', 'clusterip-sim.js')} "$@"\n`);
      chmodSync(join(bin, 'clusterip-sim'), 0o755);
    }, 60_000);
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const local = (script: string): string => script.replaceAll('/data', data).replaceAll('/config', config).replaceAll('/tmp/inputs', join(dir, 'inputs'));

    it('gives the single run\'s result', () => {
      const j = byName('Job', 'clusterip-sim-shards');
      const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
      for (let k = 0; k < j.spec.completions; k++) {
        execFileSync('sh', ['-c', local(j.spec.template.spec.containers[0].args[0])], { env: { ...env, JOB_COMPLETION_INDEX: String(k) }, stdio: 'pipe' });
      }
      expect(readdirSync(join(data, 'partials')).sort()).toEqual(Array.from({ length: j.spec.completions }, (_, k) => `shard-${k}.part`).sort());
      const m = byName('Job', 'clusterip-sim-merge').spec.template.spec;
      execFileSync('sh', ['-c', local(m.initContainers[0].args[0])], { env, stdio: 'pipe', timeout: 30_000 });
      // The merge's gate may fail (exit 3) on this traffic: the result is written before the gate decides.
      try { execFileSync('sh', ['-c', local(m.containers[0].args[0])], { env, stdio: 'pipe' }); } catch (e) { expect((e as { status: number }).status).toBe(3); }
      const files = readdirSync(join(data, 'captures')).sort().map((f) => join(data, 'captures', f));
      const single = execFileSync(join(bin, 'clusterip-sim'), ['simulate', '--config', join(config, 'cluster.yaml'), '--json', '--pcap', ...files], { env }).toString();
      const strip = (t: string): unknown => { const x = JSON.parse(t) as Record<string, unknown>; delete x.generated_at; delete x.run; delete x.gates; return x; };
      expect(strip(readFileSync(join(data, 'result.json'), 'utf8'))).toEqual(strip(single));
    }, 180_000);
  });
});
