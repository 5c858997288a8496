/**
 * Makes test/fixtures/photo-patches/: 8x8 grayscale patches of real photographs, for the RU checks with known answers
 * (test/ru-closed-form.test.ts). Each patch is a square window of a photo, 64 to 256 pixels wide, area-averaged
 * to 8x8 and contrast-stretched to [0,1], so it keeps the photo's large-scale structure (objects, edges, shading: contrast well above the noise
 * scale √(α·τ) ≈ 0.12 of the RU search) at a size a decoder learns in seconds.
 *
 * Sources (Debian's python3-skimage, skimage/data): astronaut.png (NASA, public domain) and coffee.png (CC0, Rachel
 * Michetti). Run: node --import tsx scripts/test-data/photo-patches.ts [skimage data folder]
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { Rng } from '../../src/engine/rng';

const dataDir = process.argv[2] ?? '/usr/lib/python3/dist-packages/skimage/data';
const out = path.join(__dirname, '..', '..', 'test', 'fixtures', 'photo-patches');
const SIDE = 8;
const PER_PHOTO = 100;

function gray(file: string): { w: number; h: number; v: Float32Array } {
  const png = PNG.sync.read(readFileSync(file));
  const v = new Float32Array(png.width * png.height);
  for (let p = 0; p < v.length; p++) v[p] = (0.299 * png.data[4 * p] + 0.587 * png.data[4 * p + 1] + 0.114 * png.data[4 * p + 2]) / 255;
  return { w: png.width, h: png.height, v };
}

rmSync(out, { recursive: true, force: true });
mkdirSync(path.join(out, 'train'), { recursive: true });
const rng = new Rng(19);
let k = 0;
for (const name of ['astronaut', 'coffee']) {
  const im = gray(path.join(dataDir, `${name}.png`));
  for (let i = 0; i < PER_PHOTO; i++) {
    const WINDOW = SIDE * (8 + (rng.nextU32() % 25)); // 64..256, a multiple of 8
    const x0 = rng.nextU32() % (im.w - WINDOW);
    const y0 = rng.nextU32() % (im.h - WINDOW);
    const png = new PNG({ width: SIDE, height: SIDE, colorType: 0, inputColorType: 0, bitDepth: 8 });
    const f = WINDOW / SIDE;
    const patch = new Float32Array(SIDE * SIDE);
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        let s = 0;
        for (let yy = 0; yy < f; yy++) for (let xx = 0; xx < f; xx++) s += im.v[(y0 + y * f + yy) * im.w + x0 + x * f + xx];
        patch[y * SIDE + x] = s / (f * f);
      }
    }
    // Contrast stretched to [0,1] per patch (as local contrast normalisation does): every patch then has structure
    // well above the noise scale, so what a layer keeps of it shows in RU.
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of patch) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    for (let y = 0; y < SIDE; y++) {
      for (let x = 0; x < SIDE; x++) {
        const b = Math.round(((patch[y * SIDE + x] - lo) / Math.max(hi - lo, 1e-6)) * 255);
        const o = 4 * (y * SIDE + x);
        png.data[o] = png.data[o + 1] = png.data[o + 2] = b;
        png.data[o + 3] = 255;
      }
    }
    // Every 20th patch is held out of the training folder: those are the images the tests analyse.
    const file = i % 20 === 0 ? path.join(out, `${name}-${i}.png`) : path.join(out, 'train', `${name}-${i}.png`);
    writeFileSync(file, PNG.sync.write(png, { colorType: 0 }));
    k++;
  }
}
writeFileSync(
  path.join(out, 'SOURCE.md'),
  `# photo-patches\n\n${k} patches of 8x8 gray pixels: square windows 64 to 256 pixels wide (seeded) of two photographs, area-averaged to 8x8, contrast stretched to [0,1] per patch.\nMade by scripts/test-data/photo-patches.ts from Debian's python3-skimage data:\n\n- astronaut.png: Eileen Collins, NASA Great Images; no known copyright restrictions, public domain.\n- coffee.png: courtesy of Pikolo Espresso Bar; CC0 by the photographer, Rachel Michetti.\n\n\`train/\` holds the decoder training patches; the patches beside it (every 20th) are held out for analysis.\n`,
);
console.log(`${k} patches in ${out}`);
