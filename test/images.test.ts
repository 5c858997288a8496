/** Image decoding, channel conversion, resizing and folder listing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import * as jpeg from 'jpeg-js';
import { selectBackend } from '../src/engine/backend';
import { collectImagePaths, decodeImage, prepareImage } from '../src/engine/images';
import { makeInputMapping, toModelUnits } from '../src/engine/inputMapping';
import { tempDir, writeGrayPng } from './helpers/fixtures';

test('PNG and JPEG decode; gray and RGB conversions; resize keeps the picture', async () => {
  await selectBackend('wasm');
  const dir = tempDir();
  const png = writeGrayPng(path.join(dir, 'g.png'), 20, 10, (x) => x / 19);
  const decoded = decodeImage(png);
  assert.equal(decoded.width, 20);
  const gray = prepareImage(png, decoded, 10, 20, 1);
  assert.ok(Math.abs(gray.pixels[19] - 1) < 1e-6 && Math.abs(gray.pixels[0]) < 1e-6);
  const rgb = prepareImage(png, decoded, 5, 10, 3);
  assert.equal(rgb.pixels.length, 5 * 10 * 3);
  assert.ok(rgb.pixels[0] < rgb.pixels[3 * 9], 'left-to-right ramp survives resizing');

  const w = 16, h = 8;
  const data = Buffer.alloc(w * h * 4);
  for (let i = 0; i < w * h; i++) data.set([200, 30, 30, 255], 4 * i);
  const jpgFile = path.join(dir, 'r.jpg');
  writeFileSync(jpgFile, jpeg.encode({ data, width: w, height: h }, 95).data);
  const red = prepareImage(jpgFile, decodeImage(jpgFile), 8, 16, 3);
  assert.ok(Math.abs(red.pixels[0] - 200 / 255) < 0.03 && red.pixels[1] < 0.2);
});

test('folders list their images sorted; bad entries are named', () => {
  const dir = tempDir();
  writeGrayPng(path.join(dir, 'b.png'), 2, 2, () => 0);
  writeGrayPng(path.join(dir, 'a.png'), 2, 2, () => 0);
  writeFileSync(path.join(dir, 'notes.txt'), 'x');
  assert.deepEqual(collectImagePaths([dir]).map((p) => path.basename(p)), ['a.png', 'b.png']);
  assert.throws(() => collectImagePaths([path.join(dir, 'nope.png')]), /nope\.png: no such file/);
  const empty = tempDir();
  assert.throws(() => collectImagePaths([empty]), /has no images that can be read \(\.png \.jpg \.jpeg \.bmp/);
  const txt = path.join(dir, 'notes.txt');
  assert.throws(() => decodeImage(txt), /notes\.txt: not a PNG, JPEG, BMP, GIF, TIFF or WebP image/);
});

test('input mappings: range and per-channel normalisation', () => {
  const m = makeInputMapping({ inputRange: [-1, 1] }, 3);
  assert.deepEqual(Array.from(toModelUnits(new Float32Array([0, 0.5, 1]), m)), [-1, 0, 1]);
  const n = makeInputMapping({ normalize: { mean: [0.5, 0.4, 0.3], std: [0.25, 0.5, 1] } }, 3);
  const out = toModelUnits(new Float32Array([1, 1, 1]), n);
  assert.deepEqual(Array.from(out, (v) => Math.round(v * 1e6) / 1e6), [2, 1.2, 0.7]);
  assert.deepEqual(n.scale, [4, 2, 1]);
  assert.throws(() => makeInputMapping({ normalize: { mean: [0.5, 0.5], std: [1] } }, 3), /needs 1 or 3 values/);
  assert.throws(() => makeInputMapping({ inputRange: [1, 0] }, 1), /lo < hi/);
});
