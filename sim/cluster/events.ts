/**
 * Scenario events after validation: times in seconds from the start of the
 * traffic, nodes as config indexes. Plain data.
 */

export type ScenarioEvent =
  /** The node dies at once: no handover, its conntrack table is gone. */
  | { t: number; kind: 'crash'; node: number; line?: number }
  /** The node hands its buckets over to the survivors it can reach, then stops. */
  | { t: number; kind: 'leave'; node: number; line?: number }
  /** A crashed or departed node starts again (new incarnation, empty owner set, empty conntrack table). */
  | { t: number; kind: 'rejoin'; node: number; line?: number }
  /**
   * The heartbeat network splits into groups (node indexes); nodes hear only their
   * own group. Clients still reach every node (the shared multicast MAC), which
   * is what makes a split brain duplicate packets.
   */
  | { t: number; kind: 'partition'; groups: number[][]; line?: number }
  /** Every heartbeat link works again. */
  | { t: number; kind: 'heal'; line?: number }
  /** Beats from `node` do not reach `to` during [t, t + for_s). */
  | { t: number; kind: 'heartbeat-loss'; node: number; to: number; for_s: number; line?: number }
  /** An operator gives `node` its buckets back (failback: manual). */
  | { t: number; kind: 'failback'; node: number; line?: number };

/** Kinds that start trouble (the "first fault" that recovery is measured from). */
export const FAULT_KINDS = new Set<ScenarioEvent['kind']>(['crash', 'leave', 'partition', 'heartbeat-loss']);

/** Time of the first fault among time-sorted events, or null when there is none. */
export function firstFault(events: readonly ScenarioEvent[]): number | null {
  for (const e of events) if (FAULT_KINDS.has(e.kind)) return e.t;
  return null;
}

/** "12.5s", "500ms", "2m", or a plain number of seconds. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$/.exec(v);
  if (!m) return null;
  const x = Number(m[1]);
  return m[2] === 'ms' ? x / 1000 : m[2] === 'm' ? x * 60 : x;
}
