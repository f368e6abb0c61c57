import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { checkLayers, readModules, type ModuleInfo } from './layers.ts';

const mod = (path: string, imports: string[] = [], isCli = false): ModuleInfo => ({ path, imports, isCli });

describe('layers', () => {
  it('the repository: every import points down, no folder cycle, CLI modules only under cli', () => {
    const modules = readModules(join(import.meta.dirname, '..'));
    // The walk must have seen the whole house, or an empty answer proves nothing.
    expect(modules.length).toBeGreaterThan(150);
    expect(modules.some((m) => m.isCli && m.path.startsWith('cli/'))).toBe(true);
    expect(checkLayers(modules)).toEqual([]);
  });

  it('refuses an import up, one sideways, a model import of an edge, and a test helper in production code', () => {
    const problems = checkLayers([
      mod('sim/core/errors.ts', ['sim/select/selector.ts']),
      mod('sim/select/selector.ts'),
      mod('reports/html.ts', ['bench/harness/harness.ts', 'kernel-glue/plan.ts']),
      mod('bench/harness/harness.ts'),
      mod('kernel-glue/plan.ts'),
      mod('sim/engine/run.ts', ['kernel-glue/plan.ts', 'test/frames.ts']),
      mod('test/frames.ts'),
    ]);
    expect(problems.some((p) => p.startsWith('sim/core/errors.ts') && p.endsWith(': up'))).toBe(true);
    expect(problems.some((p) => p.startsWith('reports/html.ts') && p.includes('bench/harness/harness.ts') && p.endsWith(': up'))).toBe(true);
    expect(problems.some((p) => p.startsWith('reports/html.ts') && p.includes('kernel-glue/plan.ts') && p.endsWith(': sideways'))).toBe(true);
    expect(problems.some((p) => p.startsWith('sim/engine/run.ts') && p.includes('kernel-glue/plan.ts'))).toBe(true);
    expect(problems).toContain('sim/engine/run.ts imports the test helper test/frames.ts');
  });

  it('refuses a non-CLI module importing a CLI module, and allows tests anything', () => {
    const problems = checkLayers([
      mod('cli/main.ts', [], true),
      mod('cli/format.ts', ['cli/main.ts']),
      mod('sim/engine/run.test.ts', ['cli/main.ts', 'bench/harness/harness.ts']),
      mod('bench/harness/harness.ts'),
    ]);
    expect(problems).toEqual(['cli/format.ts imports the CLI module cli/main.ts (only CLI modules may)']);
  });

  it('refuses a folder-level cycle inside one floor', () => {
    const problems = checkLayers([
      mod('kernel-glue/agent/daemon.ts', ['kernel-glue/control/apply.ts']),
      mod('kernel-glue/control/apply.ts', ['kernel-glue/agent/actions.ts']),
      mod('kernel-glue/agent/actions.ts'),
    ]);
    expect(problems).toEqual(['folder cycle: kernel-glue/agent -> kernel-glue/control -> kernel-glue/agent']);
  });
});
