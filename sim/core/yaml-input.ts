/**
 * A YAML input file (a cluster config, a failover scenario) with its place
 * kept: every error names the file, the line and the key path as the user
 * wrote them (`nodes[1].owns[0]`), and the offending value. Shared by every
 * reader of YAML so that they word their errors alike.
 */
import type { z } from 'zod';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { DataError } from './errors.ts';

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
  private readonly lc = new LineCounter();

  /** Parses `text`; a YAML syntax error is a DataError at `file:line`. */
  constructor(text: string, readonly file: string) {
    this.doc = parseDocument(text, { lineCounter: this.lc, prettyErrors: false });
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
      if (isNode(node) && node.range) return this.lc.linePos(node.range[0]).line;
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
    const lines = issues.slice(0, 5).map((iss) => `${this.where(iss.path)}: ${this.describe(iss.path, word?.(iss) ?? issueMessage(iss))}`);
    return new DataError(this.file, `invalid ${what}:\n  ${lines.join('\n  ')}`);
  }
}
