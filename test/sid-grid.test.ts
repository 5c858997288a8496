/** --sigma-grid N: sigma learnt on an N x N grid, bilinearly upsampled to the image, constraint still held. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { analyze } from '../src/engine/analyze';
import { selectBackend } from '../src/engine/backend';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { interpolationMatrix } from '../src/engine/sigmaGrid';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';

before(() => selectBackend('wasm'));

test('interpolation rows are convex combinations that hit the grid points at the corners', () => {
  const m = interpolationMatrix(12, 4);
  for (let i = 0; i < 12; i++) {
    const row = Array.from(m.subarray(i * 4, i * 4 + 4));
    assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-6);
    assert.ok(row.every((w) => w >= 0));
  }
  assert.deepEqual(Array.from(m.subarray(0, 4)), [1, 0, 0, 0]);
  assert.deepEqual(Array.from(m.subarray(11 * 4, 12 * 4)), [0, 0, 0, 1]);
});

test('a 4 x 4 sigma grid gives a smooth full-size map and holds the constraint', async () => {
  const dir = tempDir();
  const model = await saveLayersModel(reluConvNet(12, 8), path.join(dir, 'm'));
  const image = writeGrayPng(path.join(dir, 'x.png'), 12, 12, (x, y) => 0.5 + 0.4 * Math.cos(x - y));
  const base = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, seed: 3, maxSteps: 150 };
  const grid = await analyze({ modelPath: model, images: [image], layers: ['conv2'], settings: { ...base, sigmaGrid: 4 } });
  const full = await analyze({ modelPath: model, images: [image], layers: ['conv2'], settings: base });
  const g = grid.layers[0].perImage[0];
  const f = full.layers[0].perImage[0];
  assert.equal(grid.settings.sigmaGrid, 4);
  assert.equal(g.map.length, 12);
  assert.equal(g.map[0].length, 12);
  assert.ok(Math.abs(g.constraintRatio / 1.5 - 1) < 0.05, `ratio ${g.constraintRatio}`);
  // Each row of the map is piecewise linear between 4 knots: second differences vanish away from the knots.
  const knots = new Set([0, 11 / 3, 22 / 3, 11].map((k) => Math.round(k)));
  for (const row of g.map)
    for (let x = 1; x < 11; x++) {
      if (knots.has(x) || knots.has(x - 1) || knots.has(x + 1)) continue;
      assert.ok(Math.abs(row[x - 1] - 2 * row[x] + row[x + 1]) < 2e-3, `row not linear at x=${x}`);
    }
  // Fewer degrees of freedom cannot reach more entropy than one sigma per pixel (same constraint).
  assert.ok(g.sidMean <= f.sidMean + 0.05, `grid ${g.sidMean} vs per pixel ${f.sidMean}`);
});
