/** Small models and images written to temp folders for the tests. */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
// Fixtures are built before any analysis picks a backend: the cpu backend is always there.
import '@tensorflow/tfjs-backend-cpu';
import { PNG } from 'pngjs';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../../src/engine/rng';
import { saveLayersModel } from '../../src/engine/loaders/saveTfjs';

export function tempDir(prefix = 'infodiscard-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Writes an RGB(A) PNG whose pixel (x, y) has the gray value fn(x, y) in [0, 1]. */
export function writeGrayPng(file: string, width: number, height: number, fn: (x: number, y: number) => number): string {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const v = Math.max(0, Math.min(255, Math.round(fn(x, y) * 255)));
      const i = 4 * (y * width + x);
      png.data[i] = png.data[i + 1] = png.data[i + 2] = v;
      png.data[i + 3] = 255;
    }
  writeFileSync(file, PNG.sync.write(png));
  return file;
}

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** h(x) = W x on a flattened side x side image: a Dense layer without bias over a flat input. */
export async function saveLinearModel(dir: string, side: number, weights: Float32Array, outputs: number): Promise<string> {
  const model = tfl.sequential({
    layers: [tfl.layers.dense({ inputShape: [side * side], units: outputs, useBias: false, name: 'linear' })],
  });
  model.getLayer('linear').setWeights([tf.tensor2d(weights, [side * side, outputs])]);
  return saveLayersModel(model, dir);
}

/** A small ReLU conv net: conv1 -> conv2 -> conv3 (8x8x1 input by default), seeded weights. */
export function reluConvNet(size = 8, seed = 3): tfl.LayersModel {
  const input = tfl.input({ shape: [size, size, 1] });
  let y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1' }).apply(input) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv2' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'same', name: 'conv3' }).apply(y) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: y });
  let s = seed;
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    layer.setWeights(ws.map((w) => tf.tensor(randomArray(w.size, s++, w.rank > 1 ? 0.5 : 0.1), w.shape)));
  }
  return model;
}
