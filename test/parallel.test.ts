/** How the parallel runner splits an analysis into jobs, how their parts merge back (pure functions), and when it writes the merged report. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { planJobs, runLayersInPool, splitSamplesFromEnv, teamSize } from '../src/worker/parallel';
import { mergeLayerParts } from '../src/engine/reportMerge';
import { meanStd, type LayerResult, type Report } from '../src/engine/report';
import { readReport, writeReport } from '../src/engine/reportFile';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import type { AnalysisEvent } from '../src/engine/events';
import type { AnalyzeParams } from '../src/protocol';
import { sampleReport } from './fixtures/sample-report';

test('planJobs: one job per layer, or each layer\'s images in contiguous groups, at most one per worker', () => {
  assert.deepEqual(planJobs(['a', 'b'], 5, 1, true), [{ layer: 'a', layerIndex: 0 }, { layer: 'b', layerIndex: 1 }]);
  assert.deepEqual(planJobs(['a'], 1, 4, true), [{ layer: 'a', layerIndex: 0 }], 'one image: nothing to split');
  assert.deepEqual(planJobs(['a'], 5, 2, false), [{ layer: 'a', layerIndex: 0 }], 'RU keeps a layer whole');
  const jobs = planJobs(['a', 'b'], 5, 2, true);
  assert.deepEqual(jobs.map((j) => [j.layer, j.images]), [['a', [0, 1]], ['a', [2, 3, 4]], ['b', [0, 1]], ['b', [2, 3, 4]]]);
  const many = planJobs(['a'], 3, 8, true);
  assert.deepEqual(many.map((j) => j.images), [[0], [1], [2]], 'never an empty group');
});

test('teamSize: the workers a layer\'s images leave free split its samples, on large single-thread inputs by default', () => {
  const big = { mode: 'auto' as const, poolSize: 2, imageGroups: 1, samples: 16, pixels: 224 * 224, backend: 'wasm', splittable: true };
  assert.equal(teamSize(big), 2, 'ResNet-18 at 224, one image, 2 workers: every layer on both');
  assert.equal(teamSize({ ...big, backend: 'cpu' }), 2);
  assert.equal(teamSize({ ...big, pixels: 32 * 32 }), 1, 'a 32x32 step costs milliseconds: layers side by side instead');
  assert.equal(teamSize({ ...big, pixels: 128 * 128 }), 2, 'from 128x128 on');
  assert.equal(teamSize({ ...big, backend: 'webgpu' }), 1, 'a GPU worker would wait for its wasm partner');
  assert.equal(teamSize({ ...big, backend: 'tensorflow' }), 1, 'tfjs-node uses every core already');
  assert.equal(teamSize({ ...big, backend: undefined }), 1);
  assert.equal(teamSize({ ...big, imageGroups: 2 }), 1, 'two image groups fill two workers');
  assert.equal(teamSize({ ...big, poolSize: 8, imageGroups: 2 }), 4);
  assert.equal(teamSize({ ...big, poolSize: 16, samples: 8 }), 8, 'at most one worker per sample');
  assert.equal(teamSize({ ...big, poolSize: 1 }), 1);
  assert.equal(teamSize({ ...big, splittable: false }), 1, 'RU, the preview and warm starts see the whole batch');
  assert.equal(teamSize({ ...big, mode: 'always', pixels: 8 * 8, backend: 'webgpu' }), 2);
  assert.equal(teamSize({ ...big, mode: 'always', splittable: false }), 1);
  assert.equal(teamSize({ ...big, mode: 'never' }), 1);
  assert.equal(splitSamplesFromEnv({}), 'auto');
  assert.equal(splitSamplesFromEnv({ INFODISCARD_SPLIT_SAMPLES: 'never' }), 'never');
  assert.equal(splitSamplesFromEnv({ INFODISCARD_SPLIT_SAMPLES: 'bogus' }), 'auto');
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

/** A pool whose jobs write their part (no layer finished) and say 'started', then stop; `seen` is the merged report then. */
function startingPool(out: string, seen: (Report | null)[]) {
  const layers = ['l1', 'l2', 'l3'].map((name) => ({ name, kind: 'Conv2D', outputShape: [28, 28, 2], conv: true }));
  return {
    listLayers: async () => ({ status: 'complete' as const, model: { modelPath: 'm.json', format: 'tfjs-layers' as const, input: { height: 28, width: 28, channels: 1 }, layers } }),
    runTeam: async (params: AnalyzeParams, _members: number, h: { onEvent?: (e: AnalysisEvent) => void }) => {
      writeReport(params.reportPath, { ...sampleReport({ finishedLayers: 0, status: 'running' }), requestedLayers: params.layers! });
      h.onEvent?.({ type: 'started', layers: params.layers!, images: 1, backend: 'wasm' });
      seen.push(existsSync(out) ? readReport(out) : null);
      return { status: 'cancelled' as const, reportPath: params.reportPath };
    },
  };
}

test('runLayersInPool: the merged report is written when the run starts (every layer pending), so a panel shows the run at once', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-parallel-'));
  try {
    writeFileSync(path.join(dir, 'a.png'), '');
    const out = path.join(dir, 'r.json');
    const seen: (Report | null)[] = [];
    const params = { modelPath: 'm.json', images: [path.join(dir, 'a.png')], settings: { ...DEFAULT_SETTINGS, backend: 'wasm' as const }, reportPath: out };
    await runLayersInPool(startingPool(out, seen) as never, params, 2);
    assert.ok(seen[0], 'the report exists once the first job has started');
    assert.equal(seen[0].status, 'running');
    assert.deepEqual(seen[0].layers, []);
    assert.deepEqual(seen[0].requestedLayers, ['l1', 'l2', 'l3'], 'every layer, pending');

    // An earlier report (resume) is not replaced by an empty one at the start.
    const before = { ...sampleReport({ finishedLayers: 1, status: 'cancelled' }), requestedLayers: ['l1', 'l2', 'l3'] };
    writeReport(out, before);
    const again: (Report | null)[] = [];
    await runLayersInPool(startingPool(out, again) as never, params, 2);
    assert.equal(again[0]?.status, 'cancelled', 'the earlier report until a layer finishes');
    assert.equal(again[0]?.layers.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
