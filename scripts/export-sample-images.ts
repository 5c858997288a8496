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

// The object boxes of the six analysis images (media/sample/images/boxes.json, the --boxes format): the tight
// box around the garment's pixels (gray > 10 of 255), for the concentration metric.
const ANALYSIS_DIR = path.join(__dirname, '..', 'media', 'sample', 'images');
const boxes: Record<string, { bbox: [number, number, number, number] }> = {};
for (const file of fs.readdirSync(ANALYSIS_DIR).filter((f) => f.endsWith('.png')).sort()) {
  const png = PNG.sync.read(fs.readFileSync(path.join(ANALYSIS_DIR, file)));
  let x0 = png.width;
  let y0 = png.height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < png.height; y++)
    for (let x = 0; x < png.width; x++) {
      if (png.data[4 * (y * png.width + x)] > 10) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x);
        y1 = Math.max(y1, y);
      }
    }
  boxes[file] = { bbox: [x0, y0, x1 - x0 + 1, y1 - y0 + 1] };
}
const lines = Object.entries(boxes).map(([file, box]) => `  ${JSON.stringify(file)}: ${JSON.stringify(box)}`);
fs.writeFileSync(path.join(ANALYSIS_DIR, 'boxes.json'), `{\n${lines.join(',\n')}\n}\n`);
console.log(`wrote the object boxes of ${Object.keys(boxes).length} images to ${path.join(ANALYSIS_DIR, 'boxes.json')}`);
