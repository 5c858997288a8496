/**
 * The paper's coherency property: rescaling conv1's weights and bias by 1/4 and conv2's weights by 4 leaves the
 * network's function from conv2 on unchanged and conv1's feature scaled by 1/4; delta_f^2 normalisation must make
 * every layer's SID unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { analyze } from '../src/engine/analyze';
import { selectBackend } from '../src/engine/backend';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';

test('SID is unchanged when a ReLU layer is scaled down and the next one up', async () => {
  await selectBackend('wasm');
  const dir = tempDir();
  const original = reluConvNet(8, 21);
  const scaled = reluConvNet(8, 21);
  const [k1, b1] = scaled.getLayer('conv1').getWeights();
  scaled.getLayer('conv1').setWeights([tf.mul(k1, 0.25), tf.mul(b1, 0.25)]);
  const [k2, b2] = scaled.getLayer('conv2').getWeights();
  scaled.getLayer('conv2').setWeights([tf.mul(k2, 4), b2]);
  const a = await saveLayersModel(original, path.join(dir, 'a'));
  const b = await saveLayersModel(scaled, path.join(dir, 'b'));
  const image = writeGrayPng(path.join(dir, 'x.png'), 8, 8, (x, y) => 0.5 + 0.4 * Math.sin(x + 2 * y));
  const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, seed: 9, maxSteps: 120 };
  const ra = await analyze({ modelPath: a, images: [image], settings });
  const rb = await analyze({ modelPath: b, images: [image], settings });
  assert.deepEqual(ra.layers.map((l) => l.name), ['conv1', 'conv2', 'conv3']);
  for (let i = 0; i < ra.layers.length; i++) {
    const d = Math.abs(ra.layers[i].sid.mean - rb.layers[i].sid.mean);
    assert.ok(d < 0.05, `${ra.layers[i].name}: SID ${ra.layers[i].sid.mean} vs ${rb.layers[i].sid.mean}`);
  }
  // conv1's feature really did shrink (so the test would notice a missing normalisation).
  const df1 = ra.layers[0].perImage[0].deltaF2 / rb.layers[0].perImage[0].deltaF2;
  assert.ok(Math.abs(df1 - 16) < 0.5, `delta_f^2 ratio ${df1}, expected 16`);
});
