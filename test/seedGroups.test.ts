/**
 * Runs of one variant drawn as one series (src/engine/stats/seedGroups.ts, webview/report/chart.ts groupSeries,
 * webview/report/epochData.ts): seed suffixes, grouping, mean ± SD across runs, the compare view's statement, and
 * seeded epoch trajectories. Synthetic reports, no DOM.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LayerResult, Report } from '../src/engine/report';
import { manifestSeeds, parseManifest, seedFile } from '../src/engine/families';
import { groupComparison, groupRuns, meanReport, seedOf } from '../src/engine/stats/seedGroups';
import { groupSeries } from '../webview/report/chart';
import { epochChartData } from '../webview/report/epochData';

const IMAGES = ['a.png', 'b.png', 'c.png', 'd.png'];
const OFFSETS = [-0.3, -0.1, 0.1, 0.3];

/** A report with layers l1, l2 at the given level: per-image SID = level + image offset + tiny jitter. */
function report(level: number, k = 0, path = 'm.onnx'): Report {
  const layers: LayerResult[] = ['l1', 'l2'].map((name, li) => {
    const values = IMAGES.map((_, i) => level + li * 0.5 + OFFSETS[i] + 0.002 * Math.sin(7 * i + k + li));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    return {
      name, kind: 'Conv2D', outputShape: [4, 4, 2], sid: { mean, total: 0, std: 0.25 },
      concentration: { mean: level / 10, std: 0.01, images: 4 },
      perImage: values.map((v, i) => ({ image: i, sidMean: v, map: [[0]], constraintRatio: 1.5, constraintRatioSe: 0.01, lambda: 0.1, steps: 40, saturated: 0, seconds: 1, deltaF2: 1, deltaF2RelSe: 0.01, stopReason: 'converged' as const })),
    };
  });
  return {
    schemaVersion: 2, tool: { name: 'infodiscard', version: 't' }, createdAt: '', status: 'complete',
    model: { path, format: 'onnx', sha256: '', inputShape: [28, 28, 1] },
    settings: { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: 200, seed: 1, backend: 'wasm', inputRange: null, normalize: null, sigmaGrid: null, sigmaMax: 1, learningRate: 0.05 },
    images: IMAGES.map((p) => ({ path: `imgs/${p}`, width: 28, height: 28, pixels: [], channels: 1 })),
    layers, requestedLayers: ['l1', 'l2'], seconds: 1,
  };
}

test('seedOf: seed suffixes, "(seed N)" and seed<N>/ folders; names without one', () => {
  assert.deepEqual(seedOf('resnet8-seed2.onnx'), { base: 'resnet8', seed: 2 });
  assert.deepEqual(seedOf('resnet8_seed3'), { base: 'resnet8', seed: 3 });
  assert.deepEqual(seedOf('resnet8_s3'), { base: 'resnet8_s3', seed: null }, 'a bare s<N> is not read as a seed');
  assert.deepEqual(seedOf('ResNet-8 (seed 2)'), { base: 'ResNet-8', seed: 2 });
  assert.deepEqual(seedOf('media/families/seed3/depth-resnet/resnet8.onnx'), { base: 'resnet8', seed: 3 });
  assert.deepEqual(seedOf('plain6-pruned50.onnx'), { base: 'plain6-pruned50', seed: null });
  assert.deepEqual(seedOf('resnet14'), { base: 'resnet14', seed: null });
});

test('groupRuns: by explicit group, or by names differing only by a seed suffix; the unsuffixed one is seed 1', () => {
  const g = groupRuns([
    { label: 'resnet8.onnx', report: 1 }, { label: 'resnet20.onnx', report: 2 }, { label: 'resnet8-seed2.onnx', report: 3 },
    { label: 'resnet8-seed3.onnx', report: 4 }, { label: 'other.onnx', report: 5 }, { label: 'x', report: 6, group: 'g' }, { label: 'y', report: 7, group: 'g', seed: 9 },
  ]);
  assert.deepEqual(g.map((x) => [x.label, x.runs.map((r) => [r.report, r.seed])]), [
    ['resnet8', [[1, 1], [3, 2], [4, 3]]], ['resnet20.onnx', [[2, null]]], ['other.onnx', [[5, null]]], ['x', [[6, null], [7, 9]]],
  ]);
  // Two different files with the same stem and no seed stay apart.
  assert.equal(groupRuns([{ label: 'a/model.onnx', report: 1 }, { label: 'b/model.onnx', report: 2 }]).length, 2);
});

test('meanReport: per layer the mean over runs, std = SD across runs (not across images)', () => {
  const m = meanReport([report(0, 0), report(0.2, 1), report(0.4, 2)]);
  assert.equal(m.runs, 3);
  const l1 = m.layers[0];
  assert.ok(Math.abs(l1.sid.mean - 0.2) < 0.005, `${l1.sid.mean}`);
  assert.ok(Math.abs(l1.sid.std - 0.2) < 0.005, `${l1.sid.std}`);
  assert.ok(Math.abs(l1.concentration!.mean - 0.02) < 1e-9);
  assert.ok(Math.abs(l1.concentration!.std - 0.02) < 1e-9);
  assert.deepEqual(l1.perImage, []);
});

test('groupSeries: one series per variant with mean ± SD across runs, and whether the difference exceeds the run spread', () => {
  // A: levels 0, 0.2, 0.4 (seeds 1..3); B = A + 1.0 ± 0.05 per seed (paired by seed): exceeds the spread.
  const series = [1, 2, 3].flatMap((seed, k) => [
    { label: `A (seed ${seed})`, report: report(0.2 * k, k), group: 'A', seed },
    { label: `B (seed ${seed})`, report: report(0.2 * k + [1, 0.95, 1.05][k], k + 5), group: 'B', seed },
  ]);
  const g = groupSeries(series)!;
  assert.deepEqual(g.series.map((s) => s.label), ['A (3 runs)', 'B (3 runs)']);
  assert.deepEqual(g.series.map((s) => s.runs), [3, 3]);
  assert.equal(g.layer, 'l2');
  assert.equal(g.statements.length, 1);
  assert.match(g.statements[0], /^SID at l2: B − A: exceeds the run-to-run spread \(paired t over runs, n = 3 runs: Δ \+1\.00\d nats\/pixel \[95 % CI \+0\.8\d\d, \+1\.1\d\d\], run-to-run SD 0\.05\d/);
  // B = A + 0.05 with the effect varying ±0.3 between seeds: does not exceed it.
  const close = [1, 2, 3].flatMap((seed, k) => [
    { label: `A-seed${seed}.onnx`, report: report(0.2 * k, k) },
    { label: `B-seed${seed}.onnx`, report: report(0.2 * k + [0.35, -0.25, 0.05][k], k + 5) },
  ]);
  const c = groupSeries(close)!;
  assert.deepEqual(c.series.map((s) => s.label), ['A (3 runs)', 'B (3 runs)']);
  assert.match(c.statements[0], /B − A: does not exceed the run-to-run spread \(paired t over runs, n = 3 runs/);
  // Without seeds, nothing is grouped.
  assert.equal(groupSeries([{ label: 'A', report: report(0) }, { label: 'B', report: report(1) }]), null);
});

test("groupComparison: Welch's t when the seeds do not pair the variants", () => {
  const [a, b] = groupRuns([
    { label: 'A-seed1', report: report(0, 0) }, { label: 'A-seed2', report: report(0.1, 1) }, { label: 'A-seed3', report: report(-0.1, 2) },
    { label: 'B-seed4', report: report(1, 3) }, { label: 'B-seed5', report: report(1.2, 4) }, { label: 'B-seed6', report: report(0.8, 5) },
  ]);
  const r = groupComparison(a, b, 'l1')!;
  assert.equal(r.test, 'welch-t');
  assert.equal(r.nA, 3);
  assert.ok(Math.abs(r.estimate - 1) < 0.01);
  assert.ok(r.lo > 0);
});

test('epochChartData: seeded trajectories give one point per epoch, mean ± SD across runs', () => {
  const inputs = [0, 2, 4].flatMap((epoch) => [1, 2, 3].map((seed) => ({ epoch, label: `epoch-${epoch}-seed${seed}`, report: report(epoch * 0.1 + seed * 0.1, seed) })));
  const data = epochChartData(inputs);
  assert.equal(data.runs, 3);
  assert.deepEqual(data.epochs, [0, 2, 4]);
  const sid = data.lines.find((l) => l.layer === 'l1' && l.metric === 'sid')!;
  assert.equal(sid.points.length, 3);
  assert.equal(sid.points[1].runs, 3);
  assert.ok(Math.abs(sid.points[1].y - 0.4) < 0.005, `${sid.points[1].y}`);
  assert.ok(Math.abs(sid.points[1].std! - 0.1) < 0.005, `${sid.points[1].std}`);
  assert.equal(sid.points[1].checkpoint, 'epoch-2 (3 runs)');
  // One run: unchanged behaviour.
  const one = epochChartData(inputs.filter((c) => c.label.endsWith('seed1')));
  assert.equal(one.runs, undefined);
  assert.equal(one.lines[0].points[0].runs, undefined);
});

test('families manifest seeds: manifestSeeds, seedFile, and "runs" validated', () => {
  const m = parseManifest({
    seed: 1,
    families: [{ id: 'd', finding: 'depth', layers: ['l'], models: [
      { name: 'A', file: 'd/a.onnx', x: 1, seed: 1, group: 'd/a', runs: [{ seed: 2, file: 'seed2/d/a.onnx' }, { seed: 3, file: 'seed3/d/a.onnx' }] },
      { name: 'B', file: 'd/b.onnx', x: 2, runs: [{ seed: 2, file: 'seed2/d/b.onnx' }] },
    ] }],
  });
  assert.deepEqual(manifestSeeds(m), [1, 2, 3]);
  const [a, b] = m.families[0].models;
  assert.equal(seedFile(a, 1), 'd/a.onnx');
  assert.equal(seedFile(a, 3), 'seed3/d/a.onnx');
  assert.equal(seedFile(b, 3), undefined);
  assert.deepEqual(manifestSeeds({ families: [{ ...m.families[0], models: [{ name: 'x', file: 'x', x: 0 }] }] }), [1]);
  assert.throws(() => parseManifest({ families: [{ id: 'd', finding: 'depth', layers: ['l'], models: [{ name: 'A', file: 'a', x: 1, runs: [{ file: 'b' }] }] }] }), /"runs" must be an array of \{seed, file\}/);
});
