/**
 * Finds the common log-sigma shift c at which the constraint ratio r(c) equals alpha. r is evaluated on a fixed
 * set of noise samples (common random numbers), so it is a deterministic, non-decreasing-in-practice function of
 * c. Near-linear layers have log r ≈ log r(0) + 2c and need one or two secant steps; saturating layers (softmax
 * probabilities) can be far steeper, so the search keeps a bracket and falls back to bisection.
 */

export interface LevelSolution {
  shift: number;
  ratio: number;
  evaluations: number;
  /** False when alpha cannot be reached: every sigma is at its bound and the ratio is still below alpha. */
  reached: boolean;
}

export interface LevelOptions {
  alpha: number;
  /** Accept |r / alpha - 1| below this. */
  tolerance: number;
  maxEvaluations: number;
  /** The shift above which every sigma sits at its bound (raising further changes nothing). */
  maxUsefulShift: number;
}

export async function solveLevel(ratioAt: (shift: number) => Promise<number>, r0: number, opts: LevelOptions): Promise<LevelSolution> {
  const target = Math.log(opts.alpha);
  const ok = (r: number) => Math.abs(r / opts.alpha - 1) <= opts.tolerance;
  let evaluations = 0;
  const at = async (c: number) => {
    evaluations++;
    return ratioAt(c);
  };
  if (ok(r0)) return { shift: 0, ratio: r0, evaluations, reached: true };

  // 1. Bracket: walk from 0 with a log-linear guess, doubling the stride, until r crosses alpha.
  let lo = { c: 0, r: r0 };
  let hi = { c: 0, r: r0 };
  if (r0 < opts.alpha) {
    let stride = Math.max(0.05, 0.5 * (target - Math.log(Math.max(r0, 1e-30))));
    for (;;) {
      const c = Math.min(lo.c + stride, opts.maxUsefulShift);
      const r = await at(c);
      if (ok(r)) return { shift: c, ratio: r, evaluations, reached: true };
      if (r > opts.alpha) {
        hi = { c, r };
        break;
      }
      lo = { c, r };
      if (c >= opts.maxUsefulShift || evaluations >= opts.maxEvaluations) return { shift: c, ratio: r, evaluations, reached: false };
      stride *= 2;
    }
  } else {
    let stride = Math.max(0.05, 0.5 * (Math.log(r0) - target));
    for (;;) {
      const c = hi.c - stride;
      const r = await at(c);
      if (ok(r)) return { shift: c, ratio: r, evaluations, reached: true };
      if (r < opts.alpha) {
        lo = { c, r };
        break;
      }
      hi = { c, r };
      if (evaluations >= opts.maxEvaluations || c < -50) return { shift: c, ratio: r, evaluations, reached: false };
      stride *= 2;
    }
  }

  // 2. Shrink the bracket: secant in log r where it lands well inside, bisection otherwise (Illinois-style).
  let best = Math.abs(Math.log(lo.r) - target) < Math.abs(Math.log(hi.r) - target) ? lo : hi;
  while (evaluations < opts.maxEvaluations) {
    const llo = Math.log(Math.max(lo.r, 1e-30));
    const lhi = Math.log(hi.r);
    let c = lo.c + ((target - llo) / (lhi - llo)) * (hi.c - lo.c);
    const width = hi.c - lo.c;
    if (!Number.isFinite(c) || c <= lo.c + 0.1 * width || c >= hi.c - 0.1 * width) c = (lo.c + hi.c) / 2;
    const r = await at(c);
    if (Math.abs(Math.log(r) - target) <= Math.abs(Math.log(best.r) - target)) best = { c, r }; // ties: the later point is nearer a jump
    if (ok(r)) return { shift: c, ratio: r, evaluations, reached: true };
    if (r < opts.alpha) lo = { c, r };
    else hi = { c, r };
    if (hi.c - lo.c < 1e-4) break;
  }
  return { shift: best.c, ratio: best.r, evaluations, reached: ok(best.r) };
}
