/**
 * One layer's noise samples split over several processes (a "team"): every member draws the same K samples from
 * the same seeded streams, runs the network on its own contiguous share of them, and the members' partial sums
 * (the ratio and its gradient in the search, the per-sample feature changes of an estimate) are added up across
 * the team by `allReduce`. Every member then holds the same totals, so every member takes the same steps and stops
 * at the same point: the search is the one-process search, its sums added in another order (equal up to rounding,
 * as passes of the sample batch are). The worker pool forms teams for large inputs, where one step costs seconds
 * and a layer would otherwise keep one core busy while the other waits (src/worker/parallel.ts).
 */

export interface SampleShare {
  /** This process's place in the team (0 = the one whose report is kept) and the team's size. */
  member: number;
  members: number;
  /**
   * Element-wise sum of `values` over the team's members. Every member calls it with arrays of the same length in
   * the same order; each call resolves to the same array in every member. Rejects when the analysis is cancelled
   * or another member has failed.
   */
  allReduce(values: Float64Array): Promise<Float64Array>;
}

/** The samples [from, to) of a batch of `samples` that `share`'s member computes (all of them without a share). */
export function shareRange(samples: number, share: SampleShare | undefined): { from: number; to: number } {
  if (!share || share.members <= 1) return { from: 0, to: samples };
  return { from: Math.floor((share.member * samples) / share.members), to: Math.floor(((share.member + 1) * samples) / share.members) };
}

/**
 * A team of `members` in one process (tests, benchmarks): member i's `allReduce` resolves once all members have
 * called it for the same round, with the sum taken in member order (as the worker pool sums).
 */
export function localTeam(members: number): SampleShare[] {
  let round: { parts: (Float64Array | undefined)[]; waiters: ((v: Float64Array) => void)[] } | undefined;
  return Array.from({ length: members }, (_, member) => ({
    member,
    members,
    allReduce: (values: Float64Array) =>
      new Promise<Float64Array>((resolve) => {
        round ??= { parts: new Array(members).fill(undefined), waiters: [] };
        const r = round;
        if (r.parts[member]) throw new Error(`sample share: member ${member} reduced twice in one round`);
        r.parts[member] = values;
        r.waiters.push(resolve);
        if (r.parts.some((p) => !p)) return;
        round = undefined;
        const sum = sumInOrder(r.parts as Float64Array[]);
        for (const w of r.waiters) w(sum);
      }),
  }));
}

/** Element-wise sum of equally long arrays, in the given order (the same bits wherever it is taken). */
export function sumInOrder(parts: readonly Float64Array[]): Float64Array {
  const n = parts[0]?.length ?? 0;
  for (const p of parts) if (p.length !== n) throw new Error(`sample share: members reduced arrays of ${n} and ${p.length} values`);
  const sum = new Float64Array(n);
  for (const p of parts) for (let i = 0; i < n; i++) sum[i] += p[i];
  return sum;
}
