/**
 * `grouped` writes en-US thousands separators by hand for safe integers (so a
 * run that prints no table loads no ICU data); it must say exactly what
 * `toLocaleString('en-US')` says, and `fmtNum(x, 'int')` what Intl's en-US
 * integer format says.
 */
import { describe, expect, it } from 'vitest';
import { fmtNum, grouped } from './format.ts';

/** Integers of every digit count 1..16, both signs, the edges of each, and the safe limit. */
function integers(): number[] {
  const out = [0, -0, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 53, 1e21, -1e21];
  let x = 0x9e3779b9;
  for (let digits = 1; digits <= 16; digits++) {
    const lo = 10 ** (digits - 1), hi = 10 ** digits - 1;
    out.push(lo, hi, -lo, -hi);
    for (let k = 0; k < 200; k++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      const v = Math.min(Number.MAX_SAFE_INTEGER, lo + Math.floor((x / 2 ** 32) * (hi - lo)));
      out.push(k % 2 ? v : -v);
    }
  }
  return out;
}

describe('grouped', () => {
  it('equals toLocaleString(\'en-US\') on integers, fractions, huge and non-finite numbers', () => {
    const xs = [...integers(), 0.5, -0.5, 7.3, 1234.5678, -98765.4321, 1e25, Infinity, -Infinity, NaN];
    for (const x of xs) expect(grouped(x), String(x)).toBe(x.toLocaleString('en-US'));
  });

  it('fmtNum int equals Intl\'s en-US integer format, rounding first', () => {
    const intl = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
    for (const x of [...integers(), 0.5, -0.5, 1.5, 2.5, -2.5, 1234.5678, 1e25]) expect(fmtNum(x, 'int'), String(x)).toBe(intl.format(Math.round(x)));
  });
});
