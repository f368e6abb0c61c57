/**
 * A strict reader of the Prometheus text exposition format (0.0.4) for tests:
 * every line is `# HELP`, `# TYPE` (before its samples, once per family) or a
 * sample `name{label="value",...} number`; anything else throws, naming the line.
 */
export interface Sample { name: string; labels: Record<string, string>; value: number }

export function parsePrometheus(text: string): { samples: Sample[]; types: Map<string, string> } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  text.split('\n').forEach((line, i) => {
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    if (line === '') return;
    let m: RegExpExecArray | null;
    if ((m = new RegExp(`^# HELP (${NAME}) .*$`).exec(line))) return;
    if ((m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line))) {
      if (types.has(m[1]!)) fail('second TYPE for a family');
      types.set(m[1]!, m[2]!);
      return;
    }
    if (line.startsWith('#')) fail('unknown comment');
    m = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`).exec(line);
    if (!m) fail('not a sample');
    if (!types.has(m![1]!)) fail('sample before its TYPE');
    const labels: Record<string, string> = {};
    const body = m![2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    let at = 0;
    while (at < body.length) {
      re.lastIndex = at;
      const l = re.exec(body);
      if (!l) fail('bad labels');
      labels[l![1]!] = l![2]!.replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      at = re.lastIndex;
    }
    const value = Number(m![3]);
    if (Number.isNaN(value) && m![3] !== 'NaN') fail('value is not a number');
    samples.push({ name: m![1]!, labels, value });
  });
  return { samples, types };
}

/** The value of the one sample with this name and these labels (undefined when absent). */
export function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const hit = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (hit.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${hit.length} samples`);
  return hit[0]?.value;
}
