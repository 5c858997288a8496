/**
 * src/engine/stats/acrossRuns.ts: t quantiles against SciPy's values, hand-computed paired / Welch / DerSimonian–
 * Laird cases, and synthetic runs with a known answer (an effect inside the run-to-run spread is not significant,
 * a large one is).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  acrossRuns, dersimonianLaird, normalCdf, pairedAcross, reproducesAcross, runEffect, similarAcross, spreadStatement, tCdf, tQuantile, welch,
} from '../src/engine/stats/acrossRuns';

const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

test('t quantiles and CDF match SciPy (scipy.stats.t.ppf / cdf)', () => {
  const ppf975: [number, number][] = [[1, 12.706204736174694], [2, 4.302652729749462], [3, 3.1824463052837078], [4.5, 2.6589123472044034],
    [10, 2.228138851986274], [30, 2.0422724563012378], [1000, 1.9623390808264083], [Infinity, 1.959963984540054]];
  for (const [df, q] of ppf975) close(tQuantile(0.975, df), q, 1e-8, `t.ppf(0.975, ${df})`);
  close(tQuantile(0.025, 3), -3.1824463052837078, 1e-8, 'lower tail');
  close(tCdf(1.5, 3), 0.8847080673775886, 1e-10, 't.cdf(1.5, 3)');
  close(tCdf(-2.2, 7.3), 0.0310845827000118, 1e-10, 't.cdf(-2.2, 7.3)');
  close(normalCdf(-3.5), 0.00023262907903552502, 1e-12, 'norm.cdf(-3.5)');
  close(normalCdf(1), 0.8413447460685429, 1e-12, 'norm.cdf(1)');
  assert.ok(Number.isNaN(tQuantile(0.975, 0)));
});

test('paired t over runs: effects 1, 2, 3 give 2 ± t(0.975, 2)/√3 = [−0.48414, 4.48414]', () => {
  const r = pairedAcross([1, 2, 3]);
  close(r.estimate, 2, 1e-12, 'mean');
  close(r.sd, 1, 1e-12, 'sd');
  close(r.lo, -0.48413771175033027, 1e-8, 'lo');
  close(r.hi, 4.48413771175033, 1e-8, 'hi');
  close(r.t, 3.464101615137755, 1e-10, 't');
  close(r.p, 0.07417990022744854, 1e-8, 'p');
});

test("Welch's t: a = 1,2,3, b = 2.5,4,6.5,5: Δ 2.5, SE 1.0206, df 4.8701 (scipy ttest_ind equal_var=False)", () => {
  const r = welch([1, 2, 3], [2.5, 4, 6.5, 5]);
  close(r.estimate, 2.5, 1e-12, 'Δ');
  close(r.se, 1.0206207261596576, 1e-10, 'SE');
  close(r.df, 4.870129870129871, 1e-9, 'df');
  close(r.t, 2.4494897427831783, 1e-9, 't');
  close(r.p, 0.05929302709263641, 1e-8, 'p');
  close(r.hi - r.estimate, 2.5913372428802317 * 1.0206207261596576, 1e-7, 'half-width');
});

test('DerSimonian–Laird: effects 1 and 3 with SE 1 give τ² = 1, μ = 2, SE 1, interval 2 ± 12.706', () => {
  const re = dersimonianLaird([1, 3], [1, 1])!;
  close(re.tau2, 1, 1e-12, 'τ²');
  close(re.estimate, 2, 1e-12, 'μ');
  close(re.se, 1, 1e-12, 'SE');
  close(re.q, 2, 1e-12, 'Q');
  close(re.i2, 0.5, 1e-12, 'I²');
  close(re.hi, 2 + 12.706204736174694, 1e-7, 'hi');
  // Homogeneous runs: Q < k − 1, so τ² = 0 and the estimate is the inverse-variance mean.
  const fixed = dersimonianLaird([1, 1.1, 0.9], [1, 1, 0.5])!;
  assert.equal(fixed.tau2, 0);
  close(fixed.estimate, (1 + 1.1 + 0.9 * 4) / 6, 1e-12, 'fixed-effect mean');
  assert.equal(dersimonianLaird([1], [1]), null);
});

test('runEffect pairs images within a run, by name', () => {
  const e = runEffect({ a: 1, b: 2, c: 3, x: 9 }, { a: 2, b: 4, c: 3, y: 0 })!;
  assert.equal(e.n, 3);
  close(e.effect, 1, 1e-12, 'effect');
  close(e.se, 1 / Math.sqrt(3), 1e-12, 'se');
  assert.equal(runEffect({ a: 1 }, { b: 1 }), null);
});

/** Per-image values of one run: a shared image pattern plus a run offset, B shifted by `shift`, small image noise. */
function synthRun(runOffset: number, shift: number, k: number): { a: Record<string, number>; b: Record<string, number> } {
  const a: Record<string, number> = {};
  const b: Record<string, number> = {};
  for (let i = 0; i < 8; i++) {
    const base = Math.sin(i) * 0.5 + runOffset;
    a[`img${i}`] = base;
    b[`img${i}`] = base + shift + 0.01 * Math.cos(3 * i + k);
  }
  return { a, b };
}

test('synthetic runs: an effect inside the run-to-run spread does not reproduce, a large one does', () => {
  // True effect 0.05; the effect itself varies by ±0.3 between runs (each run alone is very clear: image noise 0.01).
  const small = acrossRuns([synthRun(0, 0.35, 0), synthRun(0.2, -0.25, 1), synthRun(-0.1, 0.05, 2)], true)!;
  assert.equal(small.test, 'paired-t');
  assert.equal(small.nRuns, 3);
  assert.ok(small.runs.every((r) => Math.abs(r.effect) > 5 * r.se), 'each run alone is clear');
  assert.ok(small.lo < 0 && small.hi > 0, `interval [${small.lo}, ${small.hi}] contains 0`);
  assert.equal(reproducesAcross(small, 1), false);
  close(small.runSD, 0.3, 0.01, 'run SD');
  assert.ok(small.randomEffects && small.randomEffects.tau2 > 0.05, 'random effects see the between-run variance');
  assert.ok(small.randomEffects!.lo < 0, 'random-effects interval contains 0 too');
  // A large effect (2 ± 0.3) reproduces in its direction, not in the other.
  const large = acrossRuns([synthRun(0, 2.3, 0), synthRun(0.2, 1.7, 1), synthRun(-0.1, 2.0, 2)], true)!;
  assert.ok(large.lo > 0, `interval [${large.lo}, ${large.hi}] above 0`);
  assert.equal(reproducesAcross(large, 1), true);
  assert.equal(reproducesAcross(large, -1), false);
  assert.equal(similarAcross(large, 0.5), false);
  assert.match(spreadStatement('A', 'B', large, 'nats'), /^B − A: exceeds the run-to-run spread \(paired t over runs, n = 3 runs: Δ \+2\.000 nats \[95 % CI \+1\.\d+, \+2\.\d+\]/);
  assert.match(spreadStatement('A', 'B', small), /^B − A: does not exceed the run-to-run spread/);
});

test("synthetic independent seeds: Welch's t on the per-run means", () => {
  // A's runs at levels 0, 0.1, −0.1 (+ pattern); B's at 1.0, 1.2, 0.8: Δ = 1, clearly above the run spread.
  const runs = [0, 1, 2].map((k) => ({ a: synthRun([0, 0.1, -0.1][k], 0, k).a, b: synthRun([1, 1.2, 0.8][k], 0, k).a }));
  const r = acrossRuns(runs, false)!;
  assert.equal(r.test, 'welch-t');
  close(r.estimate, 1, 1e-12, 'Δ');
  // Welch by hand: var A = 0.01, var B = 0.04, SE = √(0.01/3 + 0.04/3), df = (0.05/3)² / ((0.01/3)²/2 + (0.04/3)²/2) = 2.9412
  close(r.se, Math.sqrt(0.05 / 3), 1e-12, 'SE');
  close(r.df, (0.05 / 3) ** 2 / ((0.01 / 3) ** 2 / 2 + (0.04 / 3) ** 2 / 2), 1e-9, 'df');
  assert.ok(reproducesAcross(r, 1));
  close(r.runSD, Math.sqrt((0.01 + 0.04) / 2), 1e-12, 'pooled run SD');
  // One run per side: no interval, never reproduces, and the statement says why.
  const one = acrossRuns([runs[0]], true)!;
  assert.equal(one.nRuns, 1);
  assert.equal(reproducesAcross(one, 1), false);
  assert.match(spreadStatement('A', 'B', one), /one run per variant/);
  assert.equal(acrossRuns([{ a: { x: 1 } }], true), null);
});
