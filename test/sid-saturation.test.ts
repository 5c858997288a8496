/** Pixels a layer cannot see take the largest noise allowed (sigma_max); pixels it sees do not. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { analyze } from '../src/engine/analyze';
import { selectBackend } from '../src/engine/backend';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { GAUSSIAN_ENTROPY_CONSTANT } from '../src/engine/report';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { tempDir, writeGrayPng } from './helpers/fixtures';

before(() => selectBackend('wasm'));

test('cropped-away pixels saturate at sigma_max, the others do not', async () => {
  const dir = tempDir();
  const model = tfl.sequential({
    layers: [
      tfl.layers.cropping2D({ inputShape: [10, 10, 1], cropping: [[2, 2], [3, 1]], name: 'crop' }),
      tfl.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu', name: 'conv', kernelInitializer: tfl.initializers.glorotNormal({ seed: 4 }), biasInitializer: 'ones' }),
    ],
  });
  const file = await saveLayersModel(model, path.join(dir, 'm'));
  const image = writeGrayPng(path.join(dir, 'x.png'), 10, 10, (x, y) => ((x * 7 + y * 3) % 10) / 10);
  const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, seed: 2, sigmaMax: 1 };
  const report = await analyze({ modelPath: file, images: [image], layers: ['conv'], settings });
  const r = report.layers[0].perImage[0];
  const hMax = Math.log(settings.sigmaMax) + GAUSSIAN_ENTROPY_CONSTANT;
  let hidden = 0;
  for (let y = 0; y < 10; y++)
    for (let x = 0; x < 10; x++) {
      const visible = y >= 2 && y < 8 && x >= 3 && x < 9;
      const h = r.map[y][x];
      if (visible) assert.ok(h < hMax - 0.3, `visible pixel (${x},${y}) H=${h} should stay below ${hMax}`);
      else {
        hidden++;
        assert.ok(Math.abs(h - hMax) < 1e-3, `hidden pixel (${x},${y}) H=${h} should be ${hMax}`);
      }
    }
  assert.equal(r.saturated, hidden);
  assert.ok(Math.abs(r.constraintRatio / settings.alpha - 1) < 0.05, `ratio ${r.constraintRatio}`);
});
