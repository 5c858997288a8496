/** How the parallel runner splits an analysis into jobs, and how their parts merge back (pure functions). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planJobs } from '../src/worker/parallel';
import { mergeLayerParts } from '../src/engine/reportMerge';
import { meanStd, type LayerResult } from '../src/engine/report';

test('planJobs: one job per layer, or each layer\'s images in contiguous groups, at most one per worker', () => {
  assert.deepEqual(planJobs(['a', 'b'], 5, 1, true), [{ layer: 'a', layerIndex: 0 }, { layer: 'b', layerIndex: 1 }]);
  assert.deepEqual(planJobs(['a'], 1, 4, true), [{ layer: 'a', layerIndex: 0 }], 'one image: nothing to split');
  assert.deepEqual(planJobs(['a'], 5, 2, false), [{ layer: 'a', layerIndex: 0 }], 'RU keeps a layer whole');
  const jobs = planJobs(['a', 'b'], 5, 2, true);
  assert.deepEqual(jobs.map((j) => [j.layer, j.images]), [['a', [0, 1]], ['a', [2, 3, 4]], ['b', [0, 1]], ['b', [2, 3, 4]]]);
  const many = planJobs(['a'], 3, 8, true);
  assert.deepEqual(many.map((j) => j.images), [[0], [1], [2]], 'never an empty group');
});

test('mergeLayerParts: images in order and every summary as if computed over all images at once', () => {
  const img = (image: number, sidMean: number, concentration: number | null, g: number) =>
    ({ image, sidMean, map: [[sidMean]], constraintRatio: 1.5, lambda: 1, steps: 30, saturated: 0, seconds: 1, deltaF2: 1, concentration, ruMean: sidMean - 0.1,
      baselines: { targetClass: 0, gradNorm: [[g]], gradCam: null, cam: null, magnitude: { gradNorm: g, gradCam: null, cam: null } } }) as LayerResult['perImage'][number];
  const part = (perImage: LayerResult['perImage']): LayerResult => ({
    name: 'conv', kind: 'Conv2D', outputShape: [4, 4, 2], sid: { mean: NaN, std: NaN, total: NaN }, perImage,
    concentration: null, ru: { mean: NaN, std: NaN, total: NaN, decoder: { key: 'k', psnr: 20, trainLoss: 0, heldOutLoss: 0, epochs: 1, trainImages: 1, heldOutImages: 1, cached: false, seconds: 1 } },
    baselines: { gradNorm: { mean: NaN, std: NaN }, gradCam: null, cam: null },
  });
  const merged = mergeLayerParts([part([img(2, -0.2, 0.5, 3)]), part([img(0, -0.6, null, 1), img(1, -0.4, 0.1, 2)])], 16);
  assert.deepEqual(merged.perImage.map((p) => p.image), [0, 1, 2]);
  const sid = meanStd([-0.6, -0.4, -0.2]);
  assert.ok(Math.abs(merged.sid.mean - sid.mean) < 1e-12 && Math.abs(merged.sid.std - sid.std) < 1e-12);
  assert.ok(Math.abs(merged.sid.total - sid.mean * 16) < 1e-12);
  assert.equal(merged.concentration!.images, 2, 'images without a region are left out, as the engine does');
  assert.ok(Math.abs(merged.concentration!.mean - 0.3) < 1e-12);
  assert.ok(Math.abs(merged.ru!.mean - (sid.mean - 0.1)) < 1e-12);
  assert.equal(merged.ru!.decoder.key, 'k');
  assert.ok(Math.abs(merged.baselines!.gradNorm.mean - 2) < 1e-12);
  assert.equal(merged.baselines!.gradCam, null);
});
