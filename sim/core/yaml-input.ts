/**
 * A YAML input file (a cluster config, a failover scenario) with its place
 * kept: every error names the file, the line and the key path as the user
 * wrote them (`nodes[1].owns[0]`), and the offending value. Shared by every
 * reader of YAML so that they word their errors alike.
 */
import { createRequire } from 'node:module';
import type { z } from 'zod';
import type { Document, LineCounter } from 'yaml';
import { DataError } from './errors.ts';

type YamlLib = typeof import('yaml');
let yamlLib: YamlLib | undefined;
/**
 * The yaml package, loaded the first time a YAML file is read: a command that
 * reads none (`simulate --pcap`, the common run) skips its ~80 modules, about
 * 45 ms of a 0.5 s start measured with --cpu-prof (issue 22).
 */
function yaml(): YamlLib {
  return (yamlLib ??= createRequire(import.meta.url)('yaml') as YamlLib);
}

export type KeyPath = readonly (string | number)[];

/** A key path as the user would write it: `nodes[1].owns[0]`; the empty path is `(top level)`. */
export function fmtPath(path: readonly PropertyKey[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : `${s ? '.' : ''}${String(p)}`;
  return s || '(top level)';
}

/** The inverse of fmtPath: `nodes[1].owns[0]` -> ['nodes', 1, 'owns', 0]. */
export function parseKeyPath(path: string): (string | number)[] {
  return path.split(/\.|\[|\]/).filter(Boolean).map((x) => (/^\d+$/.test(x) ? Number(x) : x));
}

/** What a schema issue says, in the file's words ("unknown key 'x'" rather than zod's wording). */
export function issueMessage(iss: z.core.$ZodIssue): string {
  if (iss.code === 'unrecognized_keys') return `unknown key${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `'${k}'`).join(', ')}`;
  return iss.message;
}

export class YamlInput {
  readonly doc: Document;
  private readonly lc: LineCounter = new (yaml().LineCounter)();

  /** Parses `text`; a YAML syntax error is a DataError at `file:line`. */
  constructor(text: string, readonly file: string) {
    this.doc = yaml().parseDocument(text, { lineCounter: this.lc, prettyErrors: false });
    if (this.doc.errors.length) {
      const e = this.doc.errors[0]!;
      throw new DataError(`${file}:${this.lc.linePos(e.pos[0]).line}`, `YAML: ${e.message.split('\n')[0]}`);
    }
  }

  /** The parsed document as plain data (what a schema validates). */
  data(): unknown {
    return this.doc.toJS();
  }

  /** 1-based line of the deepest node of `path` that exists in the file. */
  lineOf(path: readonly PropertyKey[]): number | undefined {
    for (let k = path.length; k >= 0; k--) {
      const node = this.doc.getIn(path.slice(0, k) as (string | number)[], true);
      if (yaml().isNode(node) && node.range) return this.lc.linePos(node.range[0]).line;
    }
    return undefined;
  }

  /** `file:line` of `path` (just the file when the line is unknown). */
  where(path: readonly PropertyKey[]): string {
    const l = this.lineOf(path);
    return `${this.file}${l ? `:${l}` : ''}`;
  }

  /** `key.path: message (value: v)`: a scalar value at `path` is shown, objects are not. */
  describe(path: readonly PropertyKey[], msg: string): string {
    const val = this.doc.getIn(path as (string | number)[]);
    const shown = val === undefined || typeof val === 'object' ? '' : ` (value: ${JSON.stringify(val)})`;
    return `${fmtPath(path)}: ${msg}${shown}`;
  }

  /** A DataError at `path`'s line: `key.path: message (value: v)`. */
  fail(path: readonly PropertyKey[], msg: string): never {
    throw new DataError(this.where(path), this.describe(path, msg));
  }

  /**
   * The DataError for a failed schema: up to five issues, one a line, each at
   * its own `file:line`. `word` may reword an issue (return undefined to keep
   * issueMessage's wording).
   */
  schemaError(what: string, issues: readonly z.core.$ZodIssue[], word?: (iss: z.core.$ZodIssue) => string | undefined): DataError {
    // An unknown key is reported on its own line, not its parent's; when a required key beside it is missing and
    // close in spelling, it is the same mistake: one line with "did you mean", not two.
    const missing = issues.filter((i) => i.code === 'invalid_type' && i.input === undefined && typeof i.path.at(-1) === 'string');
    const explained = new Set<z.core.$ZodIssue>();
    const lines: string[] = [];
    for (const iss of issues) {
      if (iss.code !== 'unrecognized_keys') continue;
      for (const key of iss.keys) {
        const path = [...iss.path, key];
        const near = missing.find((m) => !explained.has(m) && m.path.length === path.length && m.path.slice(0, -1).every((p, i) => p === path[i]) && nearMiss(key, String(m.path.at(-1))));
        if (near) explained.add(near);
        lines.push(`${this.where(path)}: ${fmtPath(iss.path)}: unknown key '${key}'${near ? ` (did you mean '${String(near.path.at(-1))}'?)` : ''}`);
      }
    }
    for (const iss of issues) {
      if (iss.code === 'unrecognized_keys' || explained.has(iss)) continue;
      lines.push(`${this.where(iss.path)}: ${this.describe(iss.path, word?.(iss) ?? issueMessage(iss))}`);
    }
    return new DataError(this.file, `invalid ${what}:\n  ${lines.slice(0, 5).join('\n  ')}`);
  }
}

/** Two key spellings a slip apart: edit distance at most 2 (or 1 for keys of up to 4 letters). */
export function nearMiss(a: string, b: string): boolean {
  const max = Math.min(a.length, b.length) <= 4 ? 1 : 2;
  if (Math.abs(a.length - b.length) > max) return false;
  // Damerau-Levenshtein (optimal string alignment): a swapped pair of letters is one slip.
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]! <= max;
}
