/** Concentration of information discarding (Eq. 7) and object regions: geometry, sidecar files, masks, a real model. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as tfl from '@tensorflow/tfjs-layers';
import { PNG } from 'pngjs';
import { selectBackend } from '../src/engine/backend';
import { analyze } from '../src/engine/analyze';
import { prepareImage } from '../src/engine/images';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { isUserError } from '../src/engine/errors';
import { GAUSSIAN_ENTROPY_CONSTANT } from '../src/engine/report';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import {
  concentration,
  maskRows,
  modelPixelCentre,
  modelRectToBox,
  regionMaskFromBox,
  sampledExtent,
  summarizeConcentration,
} from '../src/engine/concentration';
import { matchRegions, parseBoxFlag, readBoxesFile, resolveRegion } from '../src/engine/regions';
import { Rng } from '../src/engine/rng';
import { tempDir, writeGrayPng } from './helpers/fixtures';

before(() => selectBackend('wasm'));

/** The set pixels of a flat mask as "row,col" strings. */
function onPixels(mask: Uint8Array, W: number): string[] {
  const out: string[] = [];
  mask.forEach((v, i) => v && out.push(`${Math.floor(i / W)},${i % W}`));
  return out;
}

function rect(r0: number, r1: number, c0: number, c1: number): string[] {
  const out: string[] = [];
  for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out.push(`${r},${c}`);
  return out;
}

test('model-pixel centres follow the actual resize of images.ts (stretch, box prefilter, half-pixel bilinear)', () => {
  // A ramp v(x) = x/255 survives box averaging and bilinear sampling linearly, so a resized pixel's value tells
  // where its centre sampled: 255*v = c - 0.5. Checked along both axes, shrinking (with the prefilter's dropped
  // remainder), identity and enlarging.
  const cases: [number, number, number, number][] = [
    // [origW, origH, modelW, modelH]
    [37, 25, 12, 12],
    [24, 24, 12, 12],
    [50, 9, 7, 9],
    [10, 6, 16, 13],
  ];
  for (const [ow, oh, mw, mh] of cases) {
    for (const axis of ['x', 'y'] as const) {
      const rgba = new Uint8Array(ow * oh * 4);
      for (let y = 0; y < oh; y++)
        for (let x = 0; x < ow; x++) {
          const i = 4 * (y * ow + x);
          rgba[i] = rgba[i + 1] = rgba[i + 2] = axis === 'x' ? x : y;
          rgba[i + 3] = 255;
        }
      const px = prepareImage('ramp', { width: ow, height: oh, rgba }, mh, mw, 1).pixels;
      const [orig, model] = axis === 'x' ? [ow, mw] : [oh, mh];
      const f = Math.max(1, Math.floor(orig / model));
      let checked = 0;
      for (let i = 0; i < model; i++) {
        const c = modelPixelCentre(i, orig, model);
        // Bilinear sampling clamps within half a (pooled) pixel of the sampled extent's edges.
        if (c < f / 2 || c > sampledExtent(orig, model) - f / 2) continue;
        const v = axis === 'x' ? px[Math.floor(mh / 2) * mw + i] : px[i * mw + Math.floor(mw / 2)];
        assert.ok(Math.abs(255 * v - (c - 0.5)) < 2e-3, `${ow}x${oh}->${mw}x${mh} ${axis}=${i}: value ${255 * v} vs centre ${c}`);
        checked++;
      }
      assert.ok(checked >= model - 2, `checked ${checked} of ${model}`);
    }
  }
});

test('regionMaskFromBox maps boxes by model-pixel centres', () => {
  // 24 -> 12: model pixel i is centred on original 2i + 1.
  assert.deepEqual(onPixels(regionMaskFromBox([8, 8, 8, 8], 24, 24, 12, 12), 12), rect(4, 8, 4, 8));
  // Non-square and non-divisible: 37x25 -> 12x12 samples [0,36) x [0,24) (x by 3, y by 2).
  assert.deepEqual(onPixels(regionMaskFromBox([6, 4, 9, 4], 37, 25, 12, 12), 12), rect(2, 4, 2, 5));
  // The dropped last row/column of the prefilter selects nothing.
  assert.deepEqual(onPixels(regionMaskFromBox([36, 0, 1, 25], 37, 25, 12, 12), 12), []);
  // Identity size: pixel k is [k, k+1).
  assert.deepEqual(onPixels(regionMaskFromBox([1, 2, 2, 1], 5, 5, 5, 5), 5), ['2,1', '2,2']);
  // A box smaller than a model pixel that misses every centre is empty; one that holds a centre is not.
  assert.deepEqual(onPixels(regionMaskFromBox([0, 0, 1, 1], 24, 24, 12, 12), 12), []);
  assert.deepEqual(onPixels(regionMaskFromBox([0.5, 0.5, 1, 1], 24, 24, 12, 12), 12), ['0,0']);
  // The whole image, and a box running past the edge (clipped).
  assert.equal(onPixels(regionMaskFromBox([0, 0, 37, 25], 37, 25, 12, 12), 12).length, 144);
  assert.deepEqual(onPixels(regionMaskFromBox([20, 20, 100, 100], 24, 24, 12, 12), 12), rect(10, 12, 10, 12));
  // Enlarging 10x6 -> 16x12 (non-uniform stretch).
  const up = regionMaskFromBox([0, 0, 5, 3], 10, 6, 12, 16);
  assert.deepEqual(onPixels(up, 16), rect(0, 6, 0, 8));
});

test('modelRectToBox is the inverse: a rectangle drawn on the model image selects exactly its pixels', () => {
  for (const [ow, oh, mh, mw] of [[37, 25, 12, 12], [10, 6, 12, 16], [24, 24, 12, 12], [7, 7, 7, 7]]) {
    const box = modelRectToBox(5, 7, 2, 3, ow, oh, mh, mw); // corners in either order
    assert.deepEqual(onPixels(regionMaskFromBox(box, ow, oh, mh, mw), mw), rect(3, 7, 2, 5), `${ow}x${oh}->${mw}x${mh}`);
  }
});

test('concentration: hand-computed values, rows or flat, empty and full regions', () => {
  const map = [
    [1, 2, 3],
    [4, 5, 6],
  ];
  const corner = [
    [1, 0, 0],
    [0, 0, 0],
  ];
  // inside: 1; outside: (2+3+4+5+6)/5 = 4.
  assert.equal(concentration(map, corner, 2, 3), 3);
  assert.equal(concentration(new Float32Array([1, 2, 3, 4, 5, 6]), new Uint8Array([1, 0, 0, 0, 0, 0]), 2, 3), 3);
  // inside: (2+5)/2 = 3.5; outside: (1+3+4+6)/4 = 3.5.
  assert.equal(concentration(map, [[0, 1, 0], [0, 1, 0]], 2, 3), 0);
  // inside: (5+6)/2 = 5.5, outside: (1+2+3+4)/4 = 2.5.
  assert.equal(concentration(map, new Uint8Array([0, 0, 0, 0, 1, 1]), 2, 3), -3);
  assert.equal(concentration(map, new Uint8Array(6), 2, 3), null);
  assert.equal(concentration(map, new Uint8Array(6).fill(1), 2, 3), null);
  assert.throws(() => concentration(map, new Uint8Array(5), 2, 3), /mask has 5 values/);
  assert.deepEqual(maskRows(new Uint8Array([1, 0, 0, 0, 1, 1]), 2, 3), [[1, 0, 0], [0, 1, 1]]);

  assert.deepEqual(summarizeConcentration([1, null, 3]), { mean: 2, std: Math.SQRT2, images: 2 });
  assert.deepEqual(summarizeConcentration([2.5]), { mean: 2.5, std: 0, images: 1 });
  assert.equal(summarizeConcentration([null, null]), null);
  assert.equal(summarizeConcentration([]), null);
});

/** Asserts `run` throws a one-line UserError that names `file` and matches `pattern`. */
function expectOneLine(run: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(run, (e: unknown) => {
    assert.ok(isUserError(e), `UserError expected, got ${String(e)}`);
    const msg = (e as Error).message;
    assert.ok(!msg.includes('\n'), `one line: ${msg}`);
    assert.ok(msg.startsWith(`${file}: `), `names ${file}: ${msg}`);
    assert.match(msg, pattern);
    return true;
  });
}

test('boxes file: bbox and mask entries; every mistake is one line naming the file', () => {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'masks'));
  writeGrayPng(path.join(dir, 'masks', 'b.png'), 4, 4, () => 1);
  const good = path.join(dir, 'boxes.json');
  writeFileSync(good, JSON.stringify({ 'a.png': { bbox: [1, 2, 3, 4.5], label: 'bird' }, 'b.png': { mask: 'masks/b.png' } }));
  const regions = readBoxesFile(good);
  assert.deepEqual(regions.get('a.png'), { bbox: [1, 2, 3, 4.5], source: 'boxes-file' });
  assert.deepEqual(regions.get('b.png'), { mask: path.join(dir, 'masks', 'b.png'), source: 'boxes-file' });

  const bad = (name: string, text: string, pattern: RegExp) => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    expectOneLine(() => readBoxesFile(file), file, pattern);
  };
  bad('syntax.json', '{"a.png": {"bbox": [1, 2, 3, 4]', /not valid JSON .*"bbox": \[x, y, width, height\]/);
  bad('array.json', '[[1, 2, 3, 4]]', /expects a JSON object keyed by image file, got an array/);
  bad('entry.json', '{"a.png": [1, 2, 3, 4]}', /entry "a.png" must be an object with "bbox" or "mask"/);
  bad('neither.json', '{"a.png": {"box": [1, 2, 3, 4]}}', /entry "a.png" needs exactly one of "bbox" and "mask"/);
  bad('both.json', '{"a.png": {"bbox": [1, 2, 3, 4], "mask": "m.png"}}', /not both/);
  bad('three.json', '{"a.png": {"bbox": [1, 2, 3]}}', /"bbox" must be 4 numbers \[x, y, width, height\]/);
  bad('strings.json', '{"a.png": {"bbox": ["1", 2, 3, 4]}}', /"bbox" must be 4 numbers/);
  bad('negative.json', '{"a.png": {"bbox": [-1, 2, 3, 4]}}', /has a negative x or y/);
  bad('zero.json', '{"a.png": {"bbox": [1, 2, 0, 4]}}', /needs a width and height above 0/);
  bad('infinite.json', '{"a.png": {"bbox": [1, 2, 1e999, 4]}}', /not a finite number/);
  bad('nomask.json', '{"a.png": {"mask": "masks/missing.png"}}', /mask file .*missing\.png not found; mask paths are relative to the boxes file/);
  bad('maskType.json', '{"a.png": {"mask": 3}}', /"mask" must be the path of a PNG/);
  const missing = path.join(dir, 'nope.json');
  expectOneLine(() => readBoxesFile(missing), missing, /cannot read the boxes file \(ENOENT\)/);
});

test('--box: four non-negative numbers, one line errors naming the flag', () => {
  assert.deepEqual(parseBoxFlag('1, 2,3.5,4'), { bbox: [1, 2, 3.5, 4], source: 'cli' });
  expectOneLine(() => parseBoxFlag('1,2,3'), '--box', /expects x,y,width,height/);
  expectOneLine(() => parseBoxFlag('a,b,c,d'), '--box', /expects x,y,width,height/);
  expectOneLine(() => parseBoxFlag('1,,3,4'), '--box', /expects x,y,width,height/);
  expectOneLine(() => parseBoxFlag('-1,0,2,2'), '--box', /negative/);
  expectOneLine(() => parseBoxFlag('0,0,0,2'), '--box', /above 0/);
});

test('matching regions to images: exact path, then absolute path, then bare file name; unused keys reported', () => {
  const cwd = tempDir();
  const r = (x: number) => ({ bbox: [x, 0, 1, 1] as [number, number, number, number], source: 'boxes-file' as const });
  const regions = new Map([
    ['imgs/a.png', r(1)],
    ['a.png', r(2)], // shadowed by the path key for imgs/a.png
    [path.join(cwd, 'other', 'b.png'), r(3)], // absolute key, image given relative
    ['c.png', r(4)], // file name
    ['zzz.png', r(5)], // no such image
    ['./imgs/e.png', r(6)], // relative key, normalised
  ]);
  const fallback = { bbox: [0, 0, 9, 9] as [number, number, number, number], source: 'cli' as const };
  const images = ['imgs/a.png', 'other/b.png', 'deep/c.png', 'd.png', 'imgs/e.png'];
  const m = matchRegions(regions, images, { cwd, fallback });
  assert.deepEqual(m.regions.map((x) => x?.bbox?.[0]), [1, 3, 4, 0, 6]);
  assert.deepEqual(m.unused, ['a.png', 'zzz.png']);
  assert.deepEqual(matchRegions(regions, images, { cwd }).regions[3], undefined);
  // A file-name key naming two images is ambiguous.
  expectOneLine(
    () => matchRegions(new Map([['c.png', r(4)]]), ['x/c.png', 'y/c.png'], { cwd, file: 'boxes.json' }),
    'boxes.json',
    /"c.png" matches 2 images by file name \(x\/c.png, y\/c.png\); key them by path/,
  );
  // ... unless each has its own path key.
  const both = matchRegions(new Map([['c.png', r(4)], ['x/c.png', r(7)], ['y/c.png', r(8)]]), ['x/c.png', 'y/c.png'], { cwd });
  assert.deepEqual(both.regions.map((x) => x?.bbox?.[0]), [7, 8]);
  assert.deepEqual(both.unused, ['c.png']);
});

function writeMaskPng(file: string, w: number, h: number, on: (x: number, y: number) => boolean, value = 255, alpha = 255): void {
  const png = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      png.data[i] = on(x, y) ? value : 0;
      png.data[i + 1] = png.data[i + 2] = 0;
      png.data[i + 3] = alpha;
    }
  writeFileSync(file, PNG.sync.write(png));
}

test('mask PNGs: non-zero is the object, resized like the image; boxes resolve by centres', () => {
  const dir = tempDir();
  const inSquare = (x: number, y: number) => x >= 8 && x < 16 && y >= 6 && y < 18;
  const dim = path.join(dir, 'dim.png');
  writeMaskPng(dim, 24, 24, inSquare, 1); // red value 1/255 still counts as object
  const fromMask = resolveRegion({ mask: dim, source: 'boxes-file' }, 'img.png', 24, 24, 12, 12);
  assert.deepEqual(Array.from(fromMask), Array.from(regionMaskFromBox([8, 6, 8, 12], 24, 24, 12, 12)));
  // Same size as the model: the mask is used as is.
  const exact = resolveRegion({ mask: dim, source: 'boxes-file' }, 'img.png', 24, 24, 24, 24);
  assert.equal(onPixels(exact, 24).length, 8 * 12);
  // Fully transparent pixels are background whatever their colour.
  const clear = path.join(dir, 'clear.png');
  writeMaskPng(clear, 24, 24, () => true, 255, 0);
  assert.equal(onPixels(resolveRegion({ mask: clear, source: 'boxes-file' }, 'img.png', 24, 24, 12, 12), 12).length, 0);

  expectOneLine(() => resolveRegion({ mask: dim, source: 'boxes-file' }, 'img.png', 32, 24, 12, 12), dim, /mask is 24x24 but the image img.png is 32x24/);
  expectOneLine(() => resolveRegion({ bbox: [30, 0, 4, 4], source: 'cli' }, 'img.png', 24, 24, 12, 12), 'img.png', /lies outside this 24x24 image/);
  assert.deepEqual(
    Array.from(resolveRegion({ bbox: [8, 8, 8, 8], source: 'cli' }, 'img.png', 24, 24, 12, 12)),
    Array.from(regionMaskFromBox([8, 8, 8, 8], 24, 24, 12, 12)),
  );
});

test('a model that only sees the image centre: positive concentration for a centred box, negative off-centre', async () => {
  const dir = tempDir();
  // 12x12 input; the layer sees only the central 4x4 (rows and columns 4..7).
  const model = tfl.sequential({
    layers: [
      tfl.layers.cropping2D({ inputShape: [12, 12, 1], cropping: [[4, 4], [4, 4]], name: 'crop' }),
      tfl.layers.flatten({ name: 'flat' }),
      tfl.layers.dense({ units: 6, name: 'dense', kernelInitializer: tfl.initializers.glorotNormal({ seed: 7 }), biasInitializer: 'zeros' }),
    ],
  });
  const file = await saveLayersModel(model, path.join(dir, 'centre'));
  // 24x24 images, shrunk 2x to the model: the centre 4x4 of the model is original pixels [8, 16).
  const images: string[] = [];
  for (let k = 0; k < 3; k++) {
    const rng = new Rng(100 + k);
    images.push(writeGrayPng(path.join(dir, `img${k}.png`), 24, 24, () => 0.2 + 0.6 * rng.uniform()));
  }
  const boxes = path.join(dir, 'boxes.json');
  writeFileSync(boxes, JSON.stringify(Object.fromEntries(images.map((p) => [path.basename(p), { bbox: [8, 8, 8, 8] }]))));

  const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, seed: 1, maxSteps: 40, samples: 8 };
  const report = await analyze({ modelPath: file, images, layers: ['dense'], settings });
  const layer = report.layers[0];
  const [H, W] = [12, 12];

  // As the lead will wire it: boxes file -> match by file name -> mask at model size -> Eq. 7 on each SID map.
  const matched = matchRegions(readBoxesFile(boxes), report.images.map((im) => im.path), { file: boxes });
  assert.deepEqual(matched.unused, []);
  const centred = layer.perImage.map((r) => {
    const im = report.images[r.image];
    const mask = resolveRegion(matched.regions[r.image]!, im.path, im.width, im.height, H, W);
    assert.deepEqual(onPixels(mask, W), rect(4, 8, 4, 8));
    return concentration(r.map, mask, H, W);
  });
  const corner = regionMaskFromBox([0, 0, 8, 8], 24, 24, H, W); // model pixels 0..3: all unseen
  const offCentre = layer.perImage.map((r) => concentration(r.map, corner, H, W));

  const hMax = Math.log(settings.sigmaMax) + GAUSSIAN_ENTROPY_CONSTANT;
  for (const [i, c] of centred.entries()) {
    assert.ok(c !== null && c > 0.3, `centred box, image ${i}: concentration ${c} should be clearly positive`);
    // Outside the seen centre every pixel saturates at sigma_max, so the outside mean is hMax.
    const r = layer.perImage[i];
    const insideMean = hMax - c!;
    assert.ok(insideMean < hMax - 0.3, `inside mean ${insideMean}`);
    assert.ok(Math.abs(r.map[0][0] - hMax) < 1e-3);
  }
  for (const [i, c] of offCentre.entries()) assert.ok(c !== null && c < -0.05, `off-centre box, image ${i}: concentration ${c} should be negative`);
  const summary = summarizeConcentration(centred)!;
  assert.equal(summary.images, 3);
  assert.ok(summary.mean > 0.3);
  assert.ok(summarizeConcentration(offCentre)!.mean < 0);
});
