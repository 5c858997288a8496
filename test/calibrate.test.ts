/** The level search behind the final constraint: smooth, steep and step-like ratio curves. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { solveLevel } from '../src/engine/calibrate';

const opts = { alpha: 1.5, tolerance: 0.01, maxEvaluations: 24, maxUsefulShift: 10 };

test('a log-linear ratio (linear layers) is solved in one or two evaluations', async () => {
  const r = (c: number) => 0.9 * Math.exp(2 * c);
  const s = await solveLevel(async (c) => r(c), r(0), opts);
  assert.ok(s.reached);
  assert.ok(Math.abs(s.ratio / 1.5 - 1) <= 0.01);
  assert.ok(s.evaluations <= 2, `${s.evaluations} evaluations`);
});

test('a very steep ratio (saturating softmax) is still bracketed and solved', async () => {
  const r = (c: number) => 0.01 * Math.exp(40 * Math.max(c, 0)) + 0.01 * Math.exp(2 * c);
  const s = await solveLevel(async (c) => r(c), r(0), opts);
  assert.ok(s.reached, JSON.stringify(s));
  assert.ok(Math.abs(r(s.shift) / 1.5 - 1) <= 0.01);
  const down = (c: number) => 200 * Math.exp(30 * c);
  const t = await solveLevel(async (c) => down(c), down(0), opts);
  assert.ok(t.reached && t.shift < 0, JSON.stringify(t));
});

test('a jump across alpha ends at the closest side, reported as not reached', async () => {
  const r = (c: number) => (c < 0.3 ? 1.0 : 3.0);
  const s = await solveLevel(async (c) => r(c), r(0), opts);
  assert.equal(s.reached, false);
  assert.ok(Math.abs(s.shift - 0.3) < 0.01, `shift ${s.shift}`);
});

test('when every sigma is at its bound and the ratio is still low, it stops there', async () => {
  const r = (c: number) => 0.5 * Math.exp(2 * Math.min(c, 0.2));
  const s = await solveLevel(async (c) => r(c), r(0), { ...opts, maxUsefulShift: 0.2 });
  assert.equal(s.reached, false);
  assert.equal(s.shift, 0.2);
});
