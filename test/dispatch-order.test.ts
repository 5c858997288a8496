/** dispatchOrder (src/worker/parallel.ts): the first layer's jobs first, then the deepest layers first. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dispatchOrder, planJobs } from '../src/worker/parallel';

test('dispatchOrder: first layer, then deepest first; every job exactly once', () => {
  const jobs = planJobs(['l1', 'l2', 'l3', 'l4'], 1, 2, true);
  assert.deepEqual(dispatchOrder(jobs).map((j) => jobs[j].layer), ['l1', 'l4', 'l3', 'l2']);
  assert.deepEqual(dispatchOrder([]), []);
  assert.deepEqual(dispatchOrder(planJobs(['only'], 1, 2, true)), [0]);
});

test('dispatchOrder keeps a layer\'s image groups together and in order', () => {
  const jobs = planJobs(['a', 'b', 'c'], 4, 2, true); // a0 a1 b0 b1 c0 c1
  const order = dispatchOrder(jobs);
  assert.deepEqual(order, [0, 1, 4, 5, 2, 3]);
  assert.deepEqual([...order].sort((x, y) => x - y), jobs.map((_, j) => j));
});
