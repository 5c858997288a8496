/**
 * The image pipeline as users' own: resize modes (stretch, center-crop, letterbox) against hand computations, boxes
 * and masks through the same geometry, EXIF orientation, explicit alpha, BMP/GIF/TIFF/WebP decoding and the one
 * warning that names the files a folder could not give. Fixtures: test/fixtures/images (scripts/make-image-fixtures.py).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import * as jpeg from 'jpeg-js';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../src/engine/backend';
import { collectImages, decodeImage, loadImages, prepareImage, skippedFilesWarning, type DecodedImage } from '../src/engine/images';
import { placement, placementOf } from '../src/engine/geometry';
import { containerExifOrientation, jpegExifOrientation } from '../src/engine/exif';
import { modelRectToBox, regionMaskFromBox } from '../src/engine/concentration';
import { resolveRegion } from '../src/engine/regions';
import { parseResize, parseTransparency } from '../src/engine/imageOptions';
import { analyze } from '../src/engine/analyze';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { parseCli, analyzeParams, type AnalyzeArgs } from '../src/cli/args';
import type { AnalysisEvent } from '../src/engine/events';
import { runLayersInPool } from '../src/worker/parallel';
import type { AnalyzeParams } from '../src/protocol';
import { tempDir, writeGrayPng } from './helpers/fixtures';

const FIXTURES = path.resolve('test/fixtures/images');

/** W x H RGB image: R = x / (W - 1), G = y / (H - 1), B = 0, opaque (values exact in 8 bits only where stated). */
function ramp(W: number, H: number): DecodedImage {
  const rgba = new Uint8Array(W * H * 4);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) rgba.set([Math.round((255 * x) / (W - 1)), Math.round((255 * y) / (H - 1)), 0, 255], 4 * (y * W + x));
  return { width: W, height: H, rgba };
}

const at = (px: Float32Array, W: number, C: number, x: number, y: number) => Array.from(px.subarray((y * W + x) * C, (y * W + x + 1) * C));
const close = (a: number[], b: number[], tol = 2e-3, what = '') => assert.ok(a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= tol), `${what}: ${a} vs ${b}`);
const onPixels = (mask: Uint8Array, W: number) => [...mask].flatMap((v, i) => (v ? [`${Math.floor(i / W)},${i % W}`] : []));

test('placement: stretch, center-crop and letterbox rectangles by hand', () => {
  // 10 x 6 image into a 4 x 4 input.
  assert.deepEqual(placement('stretch', 10, 6, 4, 4), { src: [0, 0, 10, 6], dst: [0, 0, 4, 4] });
  // s = max(4/10, 4/6) = 2/3: the crop is 4/s = 6 x 6, centred: x0 = (10 - 6) / 2 = 2.
  assert.deepEqual(placement('center-crop', 10, 6, 4, 4), { src: [2, 0, 6, 6], dst: [0, 0, 4, 4] });
  // An odd margin rounds the offset down: 11 x 6 -> crop 6 x 6 at x0 = floor(5 / 2) = 2.
  assert.deepEqual(placement('center-crop', 11, 6, 3, 3).src, [2, 0, 6, 6]);
  // s = min(4/10, 4/6) = 0.4: 10 x 6 -> 4 x 2.4 -> 4 x 2, centred: y0 = floor((4 - 2) / 2) = 1.
  assert.deepEqual(placement('letterbox', 10, 6, 4, 4), { src: [0, 0, 10, 6], dst: [0, 1, 4, 2] });
  // Non-square target (H 2 x W 4) from an 8 x 8 image: crop covers with s = max(4/8, 2/8) = 1/2 -> 8 x 4 at y0 = 2;
  // letterbox fits with s = min(1/2, 1/4) = 1/4 -> 2 x 2 at x0 = 1.
  assert.deepEqual(placement('center-crop', 8, 8, 2, 4), { src: [0, 2, 8, 4], dst: [0, 0, 4, 2] });
  assert.deepEqual(placement('letterbox', 8, 8, 2, 4), { src: [0, 0, 8, 8], dst: [1, 0, 2, 2] });
  // A portrait phone photo (3024 x 4032) into 224 x 224: torchvision's Resize(224) + CenterCrop(224) keeps the
  // middle 3024 x 3024 (s = 224/3024), y0 = (4032 - 3024) / 2 = 504.
  assert.deepEqual(placement('center-crop', 3024, 4032, 224, 224).src, [0, 504, 3024, 3024]);
  // Old reports (no geometry) are stretch; a stored crop wins over recomputing.
  assert.deepEqual(placementOf(undefined, 10, 6, 4, 4), placement('stretch', 10, 6, 4, 4));
  assert.deepEqual(placementOf({ resize: 'center-crop', crop: [1, 0, 6, 6] }, 10, 6, 4, 4).src, [1, 0, 6, 6]);
});

test('prepareImage: the pixels the model sees under each resize mode, by hand', async () => {
  await selectBackend('wasm');
  // 12 x 6 ramp into 3 x 3. R = x/11, G = y/5 (the image is stored in 8 bits: compare with its own levels).
  const img = ramp(12, 6);
  const r = (x: number) => Math.round((255 * x) / 11) / 255;
  const g = (y: number) => Math.round((255 * y) / 5) / 255;
  const mean = (f: (k: number) => number, ks: number[]) => ks.reduce((a, k) => a + f(k), 0) / ks.length;

  // stretch: columns 12 -> 3 box-averaged by 4, rows 6 -> 3 by 2.
  const st = prepareImage('ramp', img, 3, 3, 3);
  assert.deepEqual(st.geometry, { resize: 'stretch', crop: [0, 0, 12, 6], alpha: 'none' });
  for (let j = 0; j < 3; j++) close(at(st.pixels, 3, 3, j, 0), [mean(r, [4 * j, 4 * j + 1, 4 * j + 2, 4 * j + 3]), mean(g, [0, 1]), 0], 2e-3, `stretch col ${j}`);

  // center-crop: s = max(3/12, 3/6) = 1/2, crop 6 x 6 at x0 = 3, then 2 x 2 boxes: column j averages 3+2j, 4+2j.
  const cc = prepareImage('ramp', img, 3, 3, 3, { resize: 'center-crop' });
  assert.deepEqual(cc.geometry, { resize: 'center-crop', crop: [3, 0, 6, 6], alpha: 'none' });
  for (let j = 0; j < 3; j++) close(at(cc.pixels, 3, 3, j, 2), [mean(r, [3 + 2 * j, 4 + 2 * j]), mean(g, [4, 5]), 0], 2e-3, `crop col ${j}`);

  // letterbox: s = min(3/12, 3/6) = 1/4: 3 x round(1.5) = 3 x 2 at y0 = floor(1/2) = 0; row 2 is padding.
  const lb = prepareImage('ramp', img, 3, 3, 3, { resize: 'letterbox', pad: [0.5, 0.25, 1] });
  assert.deepEqual(lb.geometry, { resize: 'letterbox', crop: [0, 0, 12, 6], alpha: 'none', pad: [0.5, 0.25, 1] });
  for (let j = 0; j < 3; j++) {
    close(at(lb.pixels, 3, 3, j, 0), [mean(r, [4 * j, 4 * j + 1, 4 * j + 2, 4 * j + 3]), mean(g, [0, 1, 2]), 0], 2e-3, `letterbox row 0 col ${j}`);
    close(at(lb.pixels, 3, 3, j, 1), [mean(r, [4 * j, 4 * j + 1, 4 * j + 2, 4 * j + 3]), mean(g, [3, 4, 5]), 0], 2e-3, `letterbox row 1 col ${j}`);
    close(at(lb.pixels, 3, 3, j, 2), [0.5, 0.25, 1], 1e-6, 'padding');
  }
  // Gray models pad with the colour's luminance.
  const gray = prepareImage('ramp', img, 3, 3, 1, { resize: 'letterbox', pad: [1, 1, 1] });
  close([gray.pixels[6], gray.pixels[7], gray.pixels[8]], [1, 1, 1], 1e-6, 'gray padding');
});

test('object boxes and masks land where the object is in the crop and the letterbox', async () => {
  await selectBackend('wasm');
  // 12 x 6 image, 3 x 3 input. Model column centres in original x: stretch 2, 6, 10; center-crop (x0 = 3, 6 -> 3)
  // 4, 6, 8; letterbox (12 -> 3 on rows 0-1) 2, 6, 10 with row centres 1.5, 4.5 and row 2 padding.
  const box: [number, number, number, number] = [3, 0, 2, 6]; // original columns 3 and 4, all rows
  assert.deepEqual(onPixels(regionMaskFromBox(box, 12, 6, 3, 3), 3), [], 'stretch: no model centre in columns [3, 5)');
  const crop = { resize: 'center-crop' as const, crop: [3, 0, 6, 6] as [number, number, number, number] };
  assert.deepEqual(onPixels(regionMaskFromBox(box, 12, 6, 3, 3, crop), 3), ['0,0', '1,0', '2,0'], 'crop: model column 0 (centre x = 4)');
  const letter = { resize: 'letterbox' as const, crop: [0, 0, 12, 6] as [number, number, number, number] };
  assert.deepEqual(onPixels(regionMaskFromBox([0, 0, 12, 6], 12, 6, 3, 3, letter), 3), ['0,0', '0,1', '0,2', '1,0', '1,1', '1,2'], 'letterbox: the whole image is rows 0-1, never the padding');
  assert.deepEqual(onPixels(regionMaskFromBox([0, 3, 4, 3], 12, 6, 3, 3, letter), 3), ['1,0']);
  // A box outside the crop selects nothing.
  assert.deepEqual(onPixels(regionMaskFromBox([0, 0, 3, 6], 12, 6, 3, 3, crop), 3), []);

  // Drawn on the model image (the panel) and mapped back: the same model pixels, under every mode.
  for (const g of [undefined, crop, letter]) {
    const b = modelRectToBox(1, 0, 3, 2, 12, 6, 3, 3, g);
    assert.deepEqual(onPixels(regionMaskFromBox(b, 12, 6, 3, 3, g), 3), ['0,1', '0,2', '1,1', '1,2'], `${g?.resize ?? 'stretch'} round trip`);
  }
  // On letterbox padding the drawn part is dropped.
  const b = modelRectToBox(0, 1, 3, 3, 12, 6, 3, 3, letter);
  assert.deepEqual(onPixels(regionMaskFromBox(b, 12, 6, 3, 3, letter), 3), ['1,0', '1,1', '1,2']);

  // A mask PNG goes through the same crop as its image.
  const dir = tempDir();
  const mask = writeGrayPng(path.join(dir, 'mask.png'), 12, 6, (x) => (x >= 3 && x < 5 ? 1 : 0));
  const fromMask = resolveRegion({ mask, source: 'boxes-file' }, 'img.png', 12, 6, 3, 3, crop);
  assert.deepEqual(onPixels(fromMask, 3), ['0,0', '1,0', '2,0']);
  const fromMaskLetter = resolveRegion({ mask: writeGrayPng(path.join(dir, 'all.png'), 12, 6, () => 1), source: 'boxes-file' }, 'img.png', 12, 6, 3, 3, letter);
  assert.deepEqual(onPixels(fromMaskLetter, 3).length, 6, 'letterbox padding is not object');
});

test('EXIF orientation: all eight camera orientations load upright', async () => {
  await selectBackend('wasm');
  const quadrants = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]; // top-left, top-right, bottom-left, bottom-right
  for (let o = 1; o <= 8; o++) {
    const file = path.join(FIXTURES, 'exif', `o${o}.jpg`);
    assert.equal(jpegExifOrientation(readFileSync(file)), o);
    const d = decodeImage(file);
    assert.equal(d.exifOrientation, o);
    assert.deepEqual([d.width, d.height], [48, 32], `o${o}: upright size`);
    const im = prepareImage(file, d, 2, 2, 3);
    assert.equal(im.geometry.exifOrientation, o);
    quadrants.forEach((want, k) => close(at(im.pixels, 2, 3, k % 2, Math.floor(k / 2)), want, 0.06, `o${o} quadrant ${k}`));
  }
  // PNG (eXIf chunk) and WebP (EXIF chunk) carry the tag too: lossless, so exactly the upright picture.
  for (const ext of ['png', 'webp']) {
    const file = path.join(FIXTURES, 'exif', `o6.${ext}`);
    assert.equal(containerExifOrientation(readFileSync(file)), 6, ext);
    const d = decodeImage(file);
    assert.deepEqual([d.width, d.height, d.exifOrientation], [48, 32, 6], ext);
    assert.deepEqual([...d.rgba.subarray(0, 4)], [255, 0, 0, 255], `${ext}: red at the top left`);
    assert.deepEqual([...d.rgba.subarray(4 * 47, 4 * 48)], [0, 255, 0, 255], `${ext}: green at the top right`);
  }
  assert.equal(containerExifOrientation(readFileSync(path.join(FIXTURES, 'formats', 'pattern.webp'))), undefined);
  assert.equal(containerExifOrientation(readFileSync(path.join(FIXTURES, 'rgba.png'))), undefined);
  // Stored sideways (6: a phone held upright): without the tag it would be 32 x 48 with the quadrants turned.
  const raw = jpeg.decode(readFileSync(path.join(FIXTURES, 'exif', 'o6.jpg')), { useTArray: true });
  assert.deepEqual([raw.width, raw.height], [32, 48]);
  // A JPEG without EXIF has no orientation; a PNG is not searched.
  const w = 8, h = 8;
  const plain = jpeg.encode({ data: Buffer.alloc(w * h * 4, 128), width: w, height: h }, 90).data;
  assert.equal(jpegExifOrientation(plain), undefined);
  assert.equal(jpegExifOrientation(readFileSync(path.join(FIXTURES, 'rgba.png'))), undefined);
  const dir = tempDir();
  writeFileSync(path.join(dir, 'plain.jpg'), plain);
  assert.equal(decodeImage(path.join(dir, 'plain.jpg')).exifOrientation, undefined);
});

test('alpha: composited over the stated colour or dropped, and said per image', async () => {
  await selectBackend('wasm');
  const file = path.join(FIXTURES, 'rgba.png'); // 4 x 2: (255,0,0,255) (255,0,0,128) (0,255,0,0) (0,0,255,64) / ...
  const d = decodeImage(file);
  const px = (opts: Parameters<typeof prepareImage>[5]) => prepareImage(file, d, 2, 4, 3, opts);
  const a = 128 / 255;
  const black = px(undefined);
  assert.deepEqual(black.geometry.alpha, 'composited');
  assert.deepEqual(black.geometry.background, [0, 0, 0]);
  close(at(black.pixels, 4, 3, 0, 0), [1, 0, 0], 1e-6, 'opaque');
  close(at(black.pixels, 4, 3, 1, 0), [a, 0, 0], 1e-6, 'half over black');
  close(at(black.pixels, 4, 3, 2, 0), [0, 0, 0], 1e-6, 'transparent over black');
  const white = px({ alpha: parseTransparency('composite:255,255,255') });
  assert.deepEqual(white.geometry.background, [1, 1, 1]);
  close(at(white.pixels, 4, 3, 1, 0), [1, 1 - a, 1 - a], 1e-6, 'half over white');
  close(at(white.pixels, 4, 3, 2, 0), [1, 1, 1], 1e-6, 'transparent over white');
  const dropped = px({ alpha: parseTransparency('drop') });
  assert.equal(dropped.geometry.alpha, 'dropped');
  assert.equal(dropped.geometry.background, undefined);
  close(at(dropped.pixels, 4, 3, 1, 0), [1, 0, 0], 1e-6, 'half, alpha dropped');
  close(at(dropped.pixels, 4, 3, 2, 0), [0, 1, 0], 1e-6, 'transparent, alpha dropped: its RGB');
  // No transparency: said so, whatever was asked.
  const opaque = decodeImage(path.join(FIXTURES, 'formats', 'pattern.png'));
  assert.equal(prepareImage('p', opaque, 6, 8, 3, { alpha: { mode: 'drop' } }).geometry.alpha, 'none');
});

test('BMP, GIF (first frame), TIFF and WebP decode to the PNG\'s pixels; what a folder cannot give is named in one warning', async () => {
  await selectBackend('wasm');
  const ref = decodeImage(path.join(FIXTURES, 'formats', 'pattern.png'));
  for (const ext of ['bmp', 'gif', 'tif', 'webp']) {
    const d = decodeImage(path.join(FIXTURES, 'formats', `pattern.${ext}`));
    assert.deepEqual([d.width, d.height], [8, 6], ext);
    assert.deepEqual(Buffer.from(d.rgba).equals(Buffer.from(ref.rgba)), true, `${ext}: same pixels as the PNG`);
  }
  const dir = tempDir();
  for (const ext of ['png', 'bmp', 'gif', 'tif', 'webp']) copyFileSync(path.join(FIXTURES, 'formats', `pattern.${ext}`), path.join(dir, `pattern.${ext}`));
  writeFileSync(path.join(dir, 'broken.webp'), 'not really a webp');
  writeFileSync(path.join(dir, 'IMG_0001.HEIC'), 'heic bytes');
  writeFileSync(path.join(dir, 'boxes.json'), '{}');
  writeFileSync(path.join(dir, 'notes.txt'), 'x');
  const got = collectImages([dir]);
  assert.deepEqual(got.paths.map((p) => path.basename(p)), ['pattern.bmp', 'pattern.gif', 'pattern.png', 'pattern.tif', 'pattern.webp']);
  assert.deepEqual(got.skipped.map((s) => path.basename(s.path)), ['IMG_0001.HEIC', 'broken.webp'], 'image-looking files only; boxes.json and notes.txt are not images');
  const line = skippedFilesWarning(got.skipped)!;
  assert.ok(!line.includes('\n'), 'one line');
  assert.match(line, /^skipped 2 files that cannot be read as images: .*IMG_0001\.HEIC \(HEIC is not read\), .*broken\.webp \(not an image of a known format\); convert them to PNG/);
  assert.equal(skippedFilesWarning([]), undefined);
  const images = loadImages(got.paths, 6, 8, 3);
  for (const im of images) assert.deepEqual(Array.from(im.pixels), Array.from(images[2].pixels), path.basename(im.path));
  // Given by name, an undecodable file is an error naming it.
  assert.throws(() => decodeImage(path.join(dir, 'broken.webp')), /broken\.webp: not a PNG, JPEG, BMP, GIF, TIFF or WebP image/);
  writeFileSync(path.join(dir, 'cut.webp'), readFileSync(path.join(FIXTURES, 'formats', 'pattern.webp')).subarray(0, 30));
  assert.throws(() => decodeImage(path.join(dir, 'cut.webp')), /cut\.webp: cannot decode this WEBP image .*; re-save it as PNG/);
});

test('CLI flags: --resize and --transparency reach the request; bad values get one line', () => {
  const base = ['analyze', 'm.json', '--images', 'x.png'];
  const args = parseCli([...base, '--resize', 'letterbox:114,114,114', '--transparency', 'composite:255,255,255']) as AnalyzeArgs;
  assert.deepEqual(analyzeParams(args).imageOptions, { resize: 'letterbox', pad: [114 / 255, 114 / 255, 114 / 255], alpha: { mode: 'composite', background: [1, 1, 1] } });
  assert.equal(analyzeParams(parseCli(base) as AnalyzeArgs).imageOptions, undefined, 'unset: the engine defaults');
  assert.deepEqual(analyzeParams(parseCli([...base, '--resize', 'center-crop']) as AnalyzeArgs).imageOptions, { resize: 'center-crop' });
  assert.throws(() => parseCli([...base, '--resize', 'crop']), /^UserError: --resize: expects stretch, center-crop or letterbox\[:r,g,b\], got "crop"$/m);
  assert.throws(() => parseCli([...base, '--resize', 'center-crop:1,2,3']), /--resize: only letterbox takes a colour/);
  assert.throws(() => parseCli([...base, '--transparency', 'composite:1,2']), /--transparency: the background colour must be r,g,b, three whole numbers from 0 to 255, got "1,2"/);
  assert.throws(() => parseCli([...base, '--transparency', 'keep']), /--transparency: expects composite\[:r,g,b\] .* or drop, got "keep"/);
  assert.deepEqual(parseResize('stretch'), { resize: 'stretch' });
});

test('analyze: every image records its geometry, boxes map through it, skipped files are warned about once', async () => {
  await selectBackend('wasm');
  const dir = tempDir();
  // A 6 x 6 RGB model; images 12 x 6 (center-crop keeps columns 3-8).
  const input = tfl.input({ shape: [6, 6, 3] });
  const out = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'conv', kernelInitializer: tfl.initializers.glorotNormal({ seed: 2 }) }).apply(input) as tfl.SymbolicTensor;
  const modelFile = await saveLayersModel(tfl.model({ inputs: input, outputs: out }), path.join(dir, 'model'));
  const images = path.join(dir, 'images');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(images);
  writeGrayPng(path.join(images, 'a.png'), 12, 6, (x, y) => (x + y) / 16);
  copyFileSync(path.join(FIXTURES, 'rgba.png'), path.join(images, 'b.png'));
  writeFileSync(path.join(images, 'c.avif'), 'avif bytes');
  const boxes = path.join(images, 'boxes.json');
  writeFileSync(boxes, JSON.stringify({ 'a.png': { bbox: [3, 0, 2, 6] } }));
  const events: AnalysisEvent[] = [];
  const report = await analyze({
    modelPath: modelFile,
    images: [images],
    layers: ['conv'],
    settings: { ...DEFAULT_SETTINGS, backend: 'wasm', preview: true, samples: 4, metrics: ['sid', 'concentration'] },
    imageOptions: { resize: 'center-crop', alpha: { mode: 'composite', background: [1, 1, 1] } },
    boxesFile: boxes,
    onEvent: (e) => events.push(e),
  });
  assert.deepEqual(report.images.map((im) => im.geometry), [
    { resize: 'center-crop', crop: [3, 0, 6, 6], alpha: 'none' },
    { resize: 'center-crop', crop: [1, 0, 2, 2], alpha: 'composited', background: [1, 1, 1] },
  ]);
  assert.equal(report.settings.preprocessing, undefined, 'no profile set: settings.preprocessing left alone');
  // Model columns 0-1 look at original column 3-4 (centres 3.5 and 4.5 after the 6 -> 6 crop).
  assert.deepEqual(report.images[0].regionMask!.map((row) => row.join('')), Array(6).fill('110000'));
  const warnings = events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message);
  assert.equal(warnings.filter((m) => m.includes('c.avif')).length, 1, warnings.join(' | '));
  assert.match(warnings.find((m) => m.includes('c.avif'))!, /skipped 1 file that cannot be read as images: .*c\.avif \(AVIF is not read\)/);
  tf.disposeVariables();
});

test('worker processes: the jobs get files, so the parallel runner names the skipped ones itself, once', async () => {
  const dir = tempDir();
  copyFileSync(path.join(FIXTURES, 'formats', 'pattern.png'), path.join(dir, 'a.png'));
  copyFileSync(path.join(FIXTURES, 'formats', 'pattern.webp'), path.join(dir, 'b.webp'));
  writeFileSync(path.join(dir, 'c.jxl'), 'jxl bytes');
  const sent: AnalyzeParams[] = [];
  const events: AnalysisEvent[] = [];
  const layers = ['l1', 'l2'].map((name) => ({ name, kind: 'Conv2D', outputShape: [6, 8, 2], conv: true }));
  const pool = {
    listLayers: async () => ({ status: 'complete' as const, model: { modelPath: 'm.json', format: 'tfjs-layers' as const, input: { height: 6, width: 8, channels: 3 }, layers } }),
    runTeam: async (params: AnalyzeParams, _members: number, h: { onEvent?: (e: AnalysisEvent) => void }) => {
      sent.push(params);
      h.onEvent?.({ type: 'started', layers: params.layers!, images: params.images.length, backend: 'wasm' });
      throw new Error('stop here');
    },
  };
  const params = { modelPath: 'm.json', images: [dir], settings: { ...DEFAULT_SETTINGS, backend: 'wasm' as const }, reportPath: path.join(dir, 'r.json'), imageOptions: { resize: 'letterbox' as const } };
  await assert.rejects(runLayersInPool(pool as never, params, 2, { onEvent: (e) => events.push(e) }), /stop here/);
  assert.ok(sent.length > 1, 'several jobs');
  for (const p of sent) {
    assert.deepEqual(p.images.map((f) => path.basename(f)), ['a.png', 'b.webp'], 'files, not the folder');
    assert.deepEqual(p.imageOptions, { resize: 'letterbox' }, 'image options reach every job');
  }
  const warnings = events.filter((e): e is Extract<AnalysisEvent, { type: 'warning' }> => e.type === 'warning');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0].message, /skipped 1 file .*c\.jxl \(JXL is not read\)/);
});
