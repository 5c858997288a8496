/**
 * Writes media/sample/train/: 240 Fashion-MNIST *training-set* images (the first 24 of each class), 28x28
 * grayscale PNGs named <index>-<class>.png. The RU decoders of `npm run demo` train on them (plus the six
 * analysis images, which come from the test set). Deterministic: re-running writes identical files.
 *
 *   node --import tsx scripts/export-sample-images.ts
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import { CLASS_NAMES, readIdxImages, readIdxLabels } from './fashion-mnist';

const PER_CLASS = 24;
const OUT_DIR = path.join(__dirname, '..', 'media', 'sample', 'train');

const images = readIdxImages('train-images-idx3-ubyte');
const labels = readIdxLabels('train-labels-idx1-ubyte');
fs.rmSync(OUT_DIR, { recursive: true, force: true });
fs.mkdirSync(OUT_DIR, { recursive: true });
const taken = new Array<number>(CLASS_NAMES.length).fill(0);
const size = images.rows * images.cols;
let written = 0;
for (let i = 0; i < images.count && written < PER_CLASS * CLASS_NAMES.length; i++) {
  const cls = labels[i];
  if (taken[cls] >= PER_CLASS) continue;
  taken[cls]++;
  const png = new PNG({ width: images.cols, height: images.rows, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
  png.data = Buffer.from(images.pixels.subarray(i * size, (i + 1) * size));
  fs.writeFileSync(path.join(OUT_DIR, `${String(i).padStart(5, '0')}-${CLASS_NAMES[cls]}.png`), PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false }));
  written++;
}
console.log(`wrote ${written} images to ${OUT_DIR}`);
