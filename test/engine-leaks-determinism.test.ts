/** No tensor leaks across layers and runs; the same seed gives the same report; several images give mean ± std. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { analyze } from '../src/engine/analyze';
import { selectBackend } from '../src/engine/backend';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import type { AnalysisEvent } from '../src/engine/events';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';

before(() => selectBackend('wasm'));

const dir = tempDir();
const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, seed: 17, maxSteps: 40, samples: 8 };

async function fixture() {
  const model = await saveLayersModel(reluConvNet(8, 5), path.join(dir, 'm'));
  const images = [
    writeGrayPng(path.join(dir, 'a.png'), 8, 8, (x, y) => (x + y) / 14),
    writeGrayPng(path.join(dir, 'b.png'), 16, 16, (x, y) => (x * y) / 225), // resized to 8x8
  ];
  return { model, images };
}

test('tensor count is flat across layers and runs', async () => {
  const { model, images } = await fixture();
  await analyze({ modelPath: model, images, settings }); // warm-up: backend, kernels, caches
  const before = tf.memory().numTensors;
  const perLayer: number[] = [];
  await analyze({
    modelPath: model,
    images,
    settings,
    onEvent: (e: AnalysisEvent) => {
      if (e.type === 'layerDone') perLayer.push(tf.memory().numTensors);
    },
  });
  await analyze({ modelPath: model, images, settings });
  assert.equal(tf.memory().numTensors, before, 'tensors left after two more runs');
  assert.equal(new Set(perLayer).size, 1, `tensor count changed between layers: ${perLayer.join(', ')}`);
});

test('same seed, same report; another seed, other noise', async () => {
  const { model, images } = await fixture();
  const a = await analyze({ modelPath: model, images, settings });
  const b = await analyze({ modelPath: model, images, settings });
  const c = await analyze({ modelPath: model, images, settings: { ...settings, seed: 18 } });
  const maps = (r: typeof a) => r.layers.map((l) => l.perImage.map((p) => p.map));
  assert.deepEqual(maps(a), maps(b));
  assert.notDeepEqual(maps(a), maps(c));
});

test('several images give per-image maps and a mean ± std per layer, in events and report', async () => {
  const { model, images } = await fixture();
  const events: AnalysisEvent[] = [];
  const report = await analyze({ modelPath: model, images, settings, onEvent: (e) => events.push(e) });
  for (const layer of report.layers) {
    assert.equal(layer.perImage.length, 2);
    const [p, q] = layer.perImage.map((r) => r.sidMean);
    assert.ok(Math.abs(layer.sid.mean - (p + q) / 2) < 1e-9);
    assert.ok(Math.abs(layer.sid.std - Math.abs(p - q) / Math.SQRT2) < 1e-9);
    assert.equal(layer.perImage[0].map.length, 8);
    assert.equal(layer.perImage[0].map[0].length, 8);
    assert.ok(Math.abs(layer.sid.total - layer.sid.mean * 64) < 1e-6);
  }
  const kinds = events.map((e) => e.type);
  assert.equal(kinds[0], 'started');
  assert.equal(kinds.at(-1), 'done');
  assert.equal(kinds.filter((k) => k === 'layerDone').length, 3);
  assert.ok(kinds.filter((k) => k === 'step').length >= 3 * 2 * 20);
  assert.equal(report.images[1].width, 16, 'original size is recorded');
});
