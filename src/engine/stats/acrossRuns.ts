/**
 * Findings across training runs (issue 17): two variants (A, B) of a model, each trained with several seeds, every
 * run analysed on the same images. Pure (no I/O, no tfjs): used by `npm run repro -- --seeds N` and by the compare
 * view.
 *
 *  - Per run: the effect = mean over images of the paired per-image difference B − A (image pairing kept within a
 *    run), its within-run SE = sd of the differences / √images.
 *  - Across runs, when seeds pair the variants (the families: one seed gives both variants the same training subset,
 *    initial weights of shared layers and data order): a paired t over runs, on the per-run effects.
 *    When the variants were trained with independent seeds: Welch's t on the per-run means of A and of B.
 *  - A random-effects estimate (DerSimonian–Laird) that combines the within-run SEs with the between-run variance
 *    τ² (runs paired by seed, or by order when the seeds are independent).
 *  - 95 % intervals from Student's t quantiles (computed, not tabled: Welch's df is fractional).
 *
 * A finding *reproduces across runs* only when the interval of the across-run test excludes zero in the paper's
 * direction (reproducesAcross).
 */

// ---------------------------------------------------------------------------------------------------------------
// Distributions

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** ln Γ(x), x > 0 (Lanczos, g = 7, 9 terms; ~15 significant digits). */
export function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the regularised incomplete beta (modified Lentz; Numerical Recipes' betacf). */
function betaContinuedFraction(a: number, b: number, x: number): number {
  const TINY = 1e-300;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** The regularised incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaContinuedFraction(a, b, x)) / a : 1 - (front * betaContinuedFraction(b, a, 1 - x)) / b;
}

/** Standard normal CDF: erf by its Taylor series below |z|/√2 = 3, erfc by its continued fraction above. */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  let erfc: number;
  if (x < 3) {
    // erf series: erf x = 2/√π Σ (−1)^n x^(2n+1) / (n! (2n+1))
    let sum = x;
    let term = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    erfc = 1 - (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // Continued fraction (Lentz) for erfc x = e^(−x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))).
    let f = x;
    for (let n = 60; n >= 1; n--) f = x + n / 2 / f;
    erfc = Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
  }
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Student's t CDF with df > 0 degrees of freedom (df = Infinity: the standard normal). */
export function tCdf(t: number, df: number): number {
  if (!(df > 0)) return NaN;
  if (!Number.isFinite(df)) return normalCdf(t);
  if (t === 0) return 0.5;
  const x = df / (df + t * t);
  const tail = 0.5 * incompleteBeta(x, df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/** The p-quantile of Student's t with df > 0 (df = Infinity: normal): bisection on the CDF to 1e-12. */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) return NaN;
  if (p === 0.5) return 0;
  if (p < 0.5) return -tQuantile(1 - p, df);
  let lo = 0;
  let hi = 1;
  while (tCdf(hi, df) < p) {
    lo = hi;
    hi *= 2;
    if (hi > 1e12) return Infinity;
  }
  for (let i = 0; i < 200 && hi - lo > 1e-12 * Math.max(1, hi); i++) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Two-sided p-value of a t statistic. */
export function tTwoSidedP(t: number, df: number): number {
  if (!isNum(t) || !(df > 0)) return NaN;
  return 2 * (1 - tCdf(Math.abs(t), df));
}

// ---------------------------------------------------------------------------------------------------------------
// Small helpers

export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample variance (n − 1); NaN for fewer than 2 values. */
export function variance(xs: number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Within one run

/** One run's effect: B − A over the images both have (keys = image names). */
export interface RunEffect {
  /** Mean over images of B(image) − A(image). */
  effect: number;
  /** sd of the differences / √n (NaN for one image). */
  se: number;
  /** Images paired. */
  n: number;
  /** Mean over the paired images of A and of B (for Welch's t and the charts). */
  meanA: number;
  meanB: number;
  seed?: number;
}

export function runEffect(a: Record<string, number>, b: Record<string, number>, seed?: number): RunEffect | null {
  const da: number[] = [];
  const db: number[] = [];
  for (const [k, va] of Object.entries(a)) {
    const vb = b[k];
    if (isNum(va) && isNum(vb)) {
      da.push(va);
      db.push(vb);
    }
  }
  const n = da.length;
  if (n === 0) return null;
  const d = da.map((v, i) => db[i] - v);
  return { effect: mean(d), se: n > 1 ? Math.sqrt(variance(d) / n) : NaN, n, meanA: mean(da), meanB: mean(db), ...(seed !== undefined ? { seed } : {}) };
}

// ---------------------------------------------------------------------------------------------------------------
// Across runs

export type AcrossTest = 'paired-t' | 'welch-t';

export interface Interval {
  estimate: number;
  se: number;
  df: number;
  /** 95 % interval: estimate ± t₀.₉₇₅,df · se. */
  lo: number;
  hi: number;
}

export interface RandomEffects extends Interval {
  /** Between-run variance (DerSimonian–Laird, ≥ 0). */
  tau2: number;
  /** Cochran's Q and I² (share of the variation between runs beyond the within-run SEs). */
  q: number;
  i2: number;
}

export interface AcrossRuns extends Interval {
  test: AcrossTest;
  t: number;
  p: number;
  /** Runs: paired t: pairs; Welch: runs of A and of B. */
  nRuns: number;
  nA: number;
  nB: number;
  /** Run-to-run SD: of the per-run effects (paired), or pooled of the per-run means (Welch: √((s²A + s²B)/2)). */
  runSD: number;
  /** Mean within-run SE of the per-run effects (the image-level uncertainty of one run). */
  withinSE: number;
  /** DerSimonian–Laird over the per-run effects (null with fewer than 2 runs with a within-run SE). */
  randomEffects: RandomEffects | null;
  runs: RunEffect[];
}

function interval(estimate: number, se: number, df: number, level = 0.95): Interval {
  const q = df > 0 && isNum(se) ? tQuantile(1 - (1 - level) / 2, df) : NaN;
  const half = q * se;
  return { estimate, se, df, lo: isNum(half) ? estimate - half : -Infinity, hi: isNum(half) ? estimate + half : Infinity };
}

/** Paired t over runs on the per-run effects. */
export function pairedAcross(effects: number[]): Interval & { t: number; p: number; sd: number } {
  const n = effects.length;
  const m = n ? mean(effects) : NaN;
  const sd = Math.sqrt(variance(effects));
  const se = sd / Math.sqrt(n);
  const iv = interval(m, se, n - 1);
  const t = se > 0 ? m / se : NaN;
  return { ...iv, t, p: tTwoSidedP(t, n - 1), sd };
}

/** Welch's t on B − A with the per-run values of each (Welch–Satterthwaite df). */
export function welch(a: number[], b: number[]): Interval & { t: number; p: number } {
  const va = variance(a) / a.length;
  const vb = variance(b) / b.length;
  const est = (b.length ? mean(b) : NaN) - (a.length ? mean(a) : NaN);
  const se = Math.sqrt(va + vb);
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  const iv = interval(est, se, isNum(df) ? df : NaN);
  const t = se > 0 ? est / se : NaN;
  return { ...iv, t, p: tTwoSidedP(t, df) };
}

/**
 * DerSimonian–Laird random effects over k per-run effects with within-run variances v (SE²): w = 1/v,
 * Q = Σ w (y − ȳ_w)², τ² = max(0, (Q − (k − 1)) / (Σw − Σw²/Σw)), w* = 1/(v + τ²), μ = Σ w* y / Σ w*,
 * SE = 1/√Σw*, interval μ ± t₀.₉₇₅,k−1 · SE (t rather than z: k is a handful of runs).
 */
export function dersimonianLaird(effects: number[], ses: number[]): RandomEffects | null {
  const pairs = effects.map((y, i) => [y, ses[i]] as const).filter(([y, s]) => isNum(y) && isNum(s) && s > 0);
  const k = pairs.length;
  if (k < 2) return null;
  const w = pairs.map(([, s]) => 1 / (s * s));
  const sw = w.reduce((a, b) => a + b, 0);
  const yw = pairs.reduce((a, [y], i) => a + w[i] * y, 0) / sw;
  const q = pairs.reduce((a, [y], i) => a + w[i] * (y - yw) ** 2, 0);
  const c = sw - w.reduce((a, b) => a + b * b, 0) / sw;
  const tau2 = Math.max(0, (q - (k - 1)) / c);
  const ws = pairs.map(([, s]) => 1 / (s * s + tau2));
  const sws = ws.reduce((a, b) => a + b, 0);
  const mu = pairs.reduce((a, [y], i) => a + ws[i] * y, 0) / sws;
  const i2 = q > 0 ? Math.max(0, (q - (k - 1)) / q) : 0;
  return { ...interval(mu, 1 / Math.sqrt(sws), k - 1), tau2, q, i2 };
}

/**
 * A and B across runs. `runs`: one per run, each A's and B's per-image values (keyed by image). With paired = true
 * (the seeds pair the variants; runs[i] holds A and B of one seed) a paired t over the per-run effects; else
 * Welch's t on the per-run means of A and B (runs[i].a and runs[i].b may then be from different seeds; a run may
 * lack one side). Null when no run has both sides (paired) or a side has no run.
 */
export function acrossRuns(runs: { a?: Record<string, number>; b?: Record<string, number>; seed?: number }[], paired: boolean): AcrossRuns | null {
  const effects = runs.flatMap((r) => {
    const e = r.a && r.b ? runEffect(r.a, r.b, r.seed) : null;
    return e ? [e] : [];
  });
  const withinSEs = effects.map((e) => e.se).filter(isNum);
  const withinSE = withinSEs.length ? mean(withinSEs) : NaN;
  const re = dersimonianLaird(effects.map((e) => e.effect), effects.map((e) => e.se));
  if (paired) {
    if (!effects.length) return null;
    const p = pairedAcross(effects.map((e) => e.effect));
    return { estimate: p.estimate, se: p.se, df: p.df, lo: p.lo, hi: p.hi, test: 'paired-t', t: p.t, p: p.p, nRuns: effects.length, nA: effects.length, nB: effects.length, runSD: p.sd, withinSE, randomEffects: re, runs: effects };
  }
  const meanOf = (v: Record<string, number> | undefined): number | null => {
    const xs = Object.values(v ?? {}).filter(isNum);
    return xs.length ? mean(xs) : null;
  };
  // Welch: each side's per-run mean over the images the two sides share in every run (so the levels compare).
  const keys = (v: Record<string, number> | undefined): string[] => Object.keys(v ?? {}).filter((k) => isNum(v![k]));
  const all = runs.flatMap((r) => [r.a, r.b].filter((v): v is Record<string, number> => !!v));
  const shared = all.length ? keys(all[0]).filter((k) => all.every((v) => isNum(v[k]))) : [];
  const restrict = (v: Record<string, number> | undefined): Record<string, number> | undefined =>
    v && shared.length ? Object.fromEntries(shared.map((k) => [k, v[k]])) : v;
  const a = runs.map((r) => meanOf(restrict(r.a))).filter(isNum);
  const b = runs.map((r) => meanOf(restrict(r.b))).filter(isNum);
  if (!a.length || !b.length) return null;
  const w = welch(a, b);
  const runSD = Math.sqrt(((isNum(variance(a)) ? variance(a) : 0) + (isNum(variance(b)) ? variance(b) : 0)) / 2);
  return { estimate: w.estimate, se: w.se, df: w.df, lo: w.lo, hi: w.hi, test: 'welch-t', t: w.t, p: w.p, nRuns: Math.min(a.length, b.length), nA: a.length, nB: b.length, runSD, withinSE, randomEffects: re, runs: effects };
}

/** The interval excludes zero on the side of `direction` (+1: B > A claimed; −1: B < A). */
export function reproducesAcross(r: Pick<Interval, 'lo' | 'hi'> | null, direction: 1 | -1): boolean {
  if (!r) return false;
  return direction > 0 ? r.lo > 0 : r.hi < 0;
}

/** The interval lies inside ±margin (a "similar" claim). */
export function similarAcross(r: Pick<Interval, 'lo' | 'hi'> | null, margin: number): boolean {
  return !!r && r.lo >= -margin && r.hi <= margin;
}

const TEST_NAME: Record<AcrossTest, string> = { 'paired-t': 'paired t over runs', 'welch-t': "Welch's t" };

function f3(v: number): string {
  if (!isNum(v)) return v === Infinity ? '∞' : v === -Infinity ? '−∞' : '—';
  const s = v.toFixed(3);
  return (/^-0\.0*$/.test(s) ? s.slice(1) : s).replace(/^-/, '−');
}
function sgn(v: number): string {
  return isNum(v) && v > 0 ? `+${f3(v)}` : f3(v);
}

/** "paired t over runs, n = 3 runs: Δ +0.120 [95 % CI +0.020, +0.220], run SD 0.040" */
export function describeAcross(r: AcrossRuns, unit = ''): string {
  const u = unit ? ` ${unit}` : '';
  const n = r.test === 'welch-t' ? `${r.nA} + ${r.nB} runs` : `n = ${r.nRuns} run${r.nRuns === 1 ? '' : 's'}`;
  const ci = isNum(r.lo) && isNum(r.hi) ? `[95 % CI ${sgn(r.lo)}, ${sgn(r.hi)}]` : '(no interval: one run)';
  const re = r.randomEffects ? `; random effects ${sgn(r.randomEffects.estimate)} [${sgn(r.randomEffects.lo)}, ${sgn(r.randomEffects.hi)}], τ ${f3(Math.sqrt(r.randomEffects.tau2))}` : '';
  return `${TEST_NAME[r.test]}, ${n}: Δ ${sgn(r.estimate)}${u} ${ci}, run-to-run SD ${f3(r.runSD)}${re}`;
}

/**
 * The compare view's sentence: does the difference between two variants exceed the between-run spread?
 * "B − A: exceeds the run-to-run spread (paired t over runs, n = 3 runs: Δ …)" or "does not exceed …".
 */
export function spreadStatement(nameA: string, nameB: string, r: AcrossRuns | null, unit = ''): string {
  if (!r) return `${nameB} − ${nameA}: no run has both variants, so no across-run comparison.`;
  if (r.nRuns < 2 || !isNum(r.lo) || !isNum(r.hi)) return `${nameB} − ${nameA}: ${r.nRuns < 2 ? 'one run per variant' : 'no spread between runs'}, so it cannot be told from the run-to-run spread (${describeAcross(r, unit)}).`;
  const exceeds = r.lo > 0 || r.hi < 0;
  return `${nameB} − ${nameA}: ${exceeds ? 'exceeds' : 'does not exceed'} the run-to-run spread (${describeAcross(r, unit)}).`;
}
