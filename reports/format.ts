/**
 * Escaping and number formatting for reports. Every string that comes from a
 * result (file names, node names, descriptions) goes through `esc` before it
 * reaches HTML; JSON embedded in a <script> goes through `jsonForScript`.
 */

/** HTML-escapes text for element content and double- or single-quoted attributes. */
export function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ESC[c]!);
}
const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/**
 * JSON safe inside <script type="application/json">: `<` is written as \u003c so
 * no input string can close the script element (`</script>`) or open a comment;
 * U+2028/2029 are escaped for old JS parsers. JSON.parse gives back the same value.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

/**
 * How a number is shown in a table. Tables show exact values (integers in full,
 * with thousands separators) so a reader can check them against the JSON;
 * charts use short SI units instead.
 */
export type NumFormat = 'int' | 'f1' | 'f2' | 'f3' | 'f4' | 'pct' | 'pct1' | 'sci';

// The fixed-digit formatters are made on first use, and `grouped` needs none for a safe integer: the
// first Intl formatter of a process loads ICU's locale data (20-60 ms measured on the 2-core bench
// machine), which a run that prints no table (simulate --json) should not pay.
let fixedFormats: Record<string, Intl.NumberFormat> | null = null;
const fixed = (d: number) => new Intl.NumberFormat('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
function fixedFormat(f: string): Intl.NumberFormat {
  fixedFormats ??= { f1: fixed(1), f2: fixed(2), f3: fixed(3), f4: fixed(4) };
  return fixedFormats[f]!;
}

/**
 * `v.toLocaleString('en-US')` ("140,000"), written out by hand for a safe
 * integer (no ICU: see above), through Intl for anything else.
 */
export function grouped(v: number): string {
  if (!Number.isSafeInteger(v) || Object.is(v, -0)) return v.toLocaleString('en-US');
  const digits = String(Math.abs(v));
  let out = digits.slice(0, ((digits.length - 1) % 3) + 1);
  for (let i = out.length; i < digits.length; i += 3) out += ',' + digits.slice(i, i + 3);
  return v < 0 ? '-' + out : out;
}

export function fmtNum(v: number, f: NumFormat): string {
  if (!Number.isFinite(v)) return String(v);
  switch (f) {
    case 'int': return grouped(Math.round(v));
    case 'pct': return `${fixedFormat('f2').format(v * 100)} %`;
    case 'pct1': return `${fixedFormat('f1').format(v * 100)} %`;
    case 'sci': return Math.abs(v) >= 1e-3 || v === 0 ? fixedFormat('f4').format(v) : v.toExponential(2);
    default: return fixedFormat(f).format(v);
  }
}

/** Short SI form for prose ("1.2 M", "3.4 GB"). */
export function si(v: number, unit = ''): string {
  const a = Math.abs(v);
  const [d, p] = a >= 1e12 ? [1e12, 'T'] : a >= 1e9 ? [1e9, 'G'] : a >= 1e6 ? [1e6, 'M'] : a >= 1e3 ? [1e3, 'k'] : [1, ''];
  const x = v / d;
  const s = d === 1 ? (Number.isInteger(x) ? String(x) : x.toFixed(2)) : x.toFixed(Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2);
  return `${s}${p || unit ? ' ' : ''}${p}${unit}`;
}

/**
 * Bytes in binary units (KiB, MiB, GiB), as the terminal prints them: the
 * report and the terminal must not say 187 MB and 178.3 MiB for one number.
 */
export function fmtBytes(x: number): string {
  if (x >= 2 ** 30) return `${(x / 2 ** 30).toFixed(2)} GiB`;
  if (x >= 2 ** 20) return `${(x / 2 ** 20).toFixed(1)} MiB`;
  if (x >= 2 ** 10) return `${(x / 2 ** 10).toFixed(1)} KiB`;
  return `${x} B`;
}
