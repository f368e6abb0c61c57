/**
 * How big each worker's byte range of one capture should be when the
 * conntrack model carries its state across the cuts (run.ts startStates).
 *
 * The worker of range k > 0 cannot count until the state at its start is
 * known: the ranges before it are read once more by a first pass (scanShare,
 * one per earlier range, run side by side with range 0's counting pass), then
 * composed. Equal ranges leave range 0's worker idle while the others wait
 * for the first pass, so the later ranges are made smaller, by as much as
 * their wait: every worker then ends at about the same time.
 *
 * With first-pass costs c_j (a fraction of a counting pass over the same
 * bytes) and the first passes all started at once, range k's counting starts
 * when the slowest first pass over ranges 0..k-1 ends: finish_k =
 * max_{j<k} c_j x_j + x_k. Equal finishes give x_0 = T and
 * x_k = T - max_{j<k} c_j x_j; the weights are those x at T = 1.
 * On two workers that is x_1 = 1 - c_0: the scaling 1 -> 2 is 2 - c_0 at
 * best (equal ranges: 2 / (1 + c_0)).
 */

/**
 * Cost of the first pass over range 0 (a plain conntrack pass from an empty
 * table: read, decode, judge) per byte, as a fraction of the counting pass
 * (decode, judge, hash, connections, sink) over the same bytes. Measured on
 * this project's 2-core machine, 2026-12-07 06:09 UTC, quiet, CPU time in one
 * process: 1M packets of the bench's default mix, 0.34-0.42 s against
 * 0.82-0.96 s on full frames (0.41-0.44) and 0.24-0.30 s against 0.72 s at
 * snaplen 96 (0.33-0.42).
 */
export const FIRST_PASS_COST = 0.42;

/**
 * The same for a range after the first (scan mode: every key that may
 * continue one of the range before is followed under every state it could
 * have started in, and its packets logged): 0.45 s against 0.7-0.8 s, the
 * same capture and day.
 */
export const SCAN_PASS_COST = 0.6;

/** The smallest range a weight may give, as a fraction of range 0's. */
const MIN_WEIGHT = 0.05;

/**
 * Relative sizes of `parts` byte ranges of one capture whose conntrack state
 * is carried across the cuts (see above); weights[0] = 1.
 */
export function shareWeights(parts: number, costs: { first: number; scan: number } = { first: FIRST_PASS_COST, scan: SCAN_PASS_COST }): number[] {
  const x: number[] = [];
  let wait = 0;
  for (let k = 0; k < parts; k++) {
    x.push(Math.max(MIN_WEIGHT, 1 - wait));
    wait = Math.max(wait, (k === 0 ? costs.first : costs.scan) * x[k]!);
  }
  return x;
}
