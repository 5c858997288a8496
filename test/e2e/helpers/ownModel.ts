/**
 * Inputs of a user's own model for the end-to-end suite (issue 13): the third-party Keras MNIST checkpoint from the
 * shared data folder (resolved from the repository root as ../shared/data/..., where CI puts it beside the clone),
 * 28×28 grayscale digits drawn like the unit tests' (test/extension-preprocessing.test.ts: a 0, a 1 and a 7, white
 * on black as in MNIST), and a 224×224 photo for the ImageNet models (python3-skimage's data folder).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { ROOT } from './codeServer';

/** The 0-255 Keras checkpoint (epoch 1 of the keras-mnist-dnn-repair run); undefined when the data folder is absent. */
export function kerasCheckpoint(): string | undefined {
  const file = path.resolve(ROOT, '..', 'shared', 'data', 'keras-mnist-dnn-repair', 'saved-model-01-0.96.hdf5');
  return existsSync(file) ? file : undefined;
}

/** torchvision's ResNet-18 exported to ONNX by scripts/test-data/torchvision-onnx.py (224×224 input); undefined if absent. */
export function resnet18Onnx(): string | undefined {
  const file = path.join(ROOT, '.cache', 'torchvision-onnx', 'resnet18.onnx');
  return existsSync(file) ? file : undefined;
}

/** A photo from python3-skimage's data folder (chelsea the cat, 451×300 RGB); undefined if not installed. */
export function skimagePhoto(name = 'chelsea.png'): string | undefined {
  for (const dir of ['/usr/lib/python3/dist-packages/skimage/data', '/usr/share/python3-skimage/data']) {
    const file = path.join(dir, name);
    if (existsSync(file)) return file;
  }
  return undefined;
}

const ZERO = (x: number, y: number) => Math.max(0, 1 - Math.abs(Math.hypot((x - 13.5) / 0.8, y - 13.5) - 8) / 2.5);
const ONE = (x: number, y: number) => (y >= 5 && y < 23 && x >= 12 && x < 16 ? 1 : 0);
const SEVEN = (x: number, y: number) => ((y >= 5 && y < 8 && x >= 7 && x < 21) || (Math.abs(x - (20 - (y - 5) * 0.5)) < 1.6 && y >= 5 && y < 24) ? 1 : 0);

function writeGrayPng(file: string, fn: (x: number, y: number) => number): void {
  const png = new PNG({ width: 28, height: 28 });
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = Math.max(0, Math.min(255, Math.round(fn(x, y) * 255)));
      const i = 4 * (y * 28 + x);
      png.data[i] = png.data[i + 1] = png.data[i + 2] = v;
      png.data[i + 3] = 255;
    }
  }
  writeFileSync(file, PNG.sync.write(png));
}

/** Writes zero.png, one.png and seven.png (28×28, MNIST-like) into `dir`. */
export function writeDigits(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeGrayPng(path.join(dir, 'zero.png'), ZERO);
  writeGrayPng(path.join(dir, 'one.png'), ONE);
  writeGrayPng(path.join(dir, 'seven.png'), SEVEN);
}
