/**
 * Benchmark fixture: a ResNet-8/14/20-style CIFAR model with seeded random weights, saved in tfjs Layers
 * format, plus one deterministic 32x32 RGB test image and the model's logits on it (computed here, on the
 * cpu backend, so the PyTorch reference can check that it rebuilt the same network).
 *
 * The PyTorch side (bench/sid_reference.py) reads the weights straight from model.json's weightsManifest and
 * weights.bin: that already is "JSON manifest (names, shapes, float32) + raw .bin", so no second copy is written.
 * fixture.json adds what the manifest lacks: depth n, BN epsilon, the analysed layer names and the logits.
 *
 * Run standalone: node --import tsx bench/resnet20.ts <outDir> [--n 3] [--seed 1]
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { PNG } from 'pngjs';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Keras' default, written out because PyTorch's default (1e-5) differs and the reference must match it. */
export const BN_EPSILON = 1e-3;

export interface FixtureInfo {
  dir: string;
  modelPath: string;
  imagePath: string;
  /** Every named block output, in model order: stem, stage1_block1, ..., stage3_block{n}. */
  blockNames: string[];
  logits: number[];
}

export function buildResNet(n: number, seed: number, size = 32): tfl.LayersModel {
  // Every initializer gets its own seed so layers differ, yet the whole model is reproducible.
  let next = seed * 1000;
  const kernel = () => tfl.initializers.glorotNormal({ seed: next++ });
  const conv = (x: tfl.SymbolicTensor, filters: number, size: number, strides: number, name: string) =>
    tfl.layers
      .conv2d({ filters, kernelSize: size, strides, padding: 'same', useBias: false, kernelInitializer: kernel(), name })
      .apply(x) as tfl.SymbolicTensor;
  // Random gamma/beta/moving statistics so that BN is not the identity and a wrong epsilon or a
  // mean/variance mix-up in the reference shows up in the forward check.
  const bn = (x: tfl.SymbolicTensor, name: string) =>
    tfl.layers
      .batchNormalization({
        epsilon: BN_EPSILON,
        name,
        gammaInitializer: tfl.initializers.randomUniform({ minval: 0.8, maxval: 1.2, seed: next++ }),
        betaInitializer: tfl.initializers.randomNormal({ mean: 0, stddev: 0.1, seed: next++ }),
        movingMeanInitializer: tfl.initializers.randomNormal({ mean: 0, stddev: 0.1, seed: next++ }),
        movingVarianceInitializer: tfl.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: next++ }),
      })
      .apply(x) as tfl.SymbolicTensor;
  const relu = (x: tfl.SymbolicTensor, name: string) =>
    tfl.layers.activation({ activation: 'relu', name }).apply(x) as tfl.SymbolicTensor;

  const input = tfl.input({ shape: [size, size, 3], name: 'image' });
  let x = relu(bn(conv(input, 16, 3, 1, 'stem_conv'), 'stem_bn'), 'stem');
  [16, 32, 64].forEach((filters, s) => {
    for (let b = 0; b < n; b++) {
      const name = `stage${s + 1}_block${b + 1}`;
      const strides = s > 0 && b === 0 ? 2 : 1;
      let y = relu(bn(conv(x, filters, 3, strides, `${name}_conv1`), `${name}_bn1`), `${name}_relu1`);
      y = bn(conv(y, filters, 3, 1, `${name}_conv2`), `${name}_bn2`);
      // Projection shortcut where the shape changes (start of stages 2 and 3), identity elsewhere.
      const shortcut = strides === 2 ? bn(conv(x, filters, 1, 2, `${name}_proj`), `${name}_proj_bn`) : x;
      x = relu(tfl.layers.add({ name: `${name}_add` }).apply([y, shortcut]) as tfl.SymbolicTensor, name);
    }
  });
  const pooled = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tfl.SymbolicTensor;
  const logits = tfl.layers
    .dense({ units: 10, name: 'logits', kernelInitializer: kernel(), biasInitializer: tfl.initializers.randomNormal({ stddev: 0.1, seed: next++ }) })
    .apply(pooled) as tfl.SymbolicTensor;
  return tfl.model({ inputs: input, outputs: logits, name: `resnet${6 * n + 2}` });
}

export function blockNames(n: number): string[] {
  const names = ['stem'];
  for (let s = 1; s <= 3; s++) for (let b = 1; b <= n; b++) names.push(`stage${s}_block${b}`);
  return names;
}

/** Writes model.json + weights.bin exactly as tfjs' file:// handler would (tfjs-node is optional here). */
export async function saveLayersModel(model: tfl.LayersModel, dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const modelPath = path.join(dir, 'model.json');
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
      writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(data));
      const json = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      writeFileSync(modelPath, JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return modelPath;
}

/** Smooth, deterministic RGB pattern: low-frequency waves and a soft blob, so SID maps have some structure. */
export function testImagePixels(size = 32): Uint8Array {
  const px = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x / (size - 1);
      const v = y / (size - 1);
      const blob = Math.exp(-((u - 0.6) ** 2 + (v - 0.4) ** 2) / 0.05);
      const rgb = [
        0.5 + 0.35 * Math.sin(2 * Math.PI * (1.2 * u + 0.3 * v)) + 0.1 * blob,
        0.4 + 0.3 * Math.cos(2 * Math.PI * (0.8 * v - 0.5 * u)) + 0.25 * blob,
        0.3 + 0.5 * u * v + 0.15 * Math.sin(6 * Math.PI * u),
      ];
      rgb.forEach((c, k) => (px[(y * size + x) * 3 + k] = Math.round(255 * Math.min(1, Math.max(0, c)))));
    }
  }
  return px;
}

export function writeTestImage(file: string, size = 32): Uint8Array {
  const rgb = testImagePixels(size);
  const png = new PNG({ width: size, height: size, colorType: 2 });
  for (let i = 0; i < size * size; i++) {
    png.data[4 * i] = rgb[3 * i];
    png.data[4 * i + 1] = rgb[3 * i + 1];
    png.data[4 * i + 2] = rgb[3 * i + 2];
    png.data[4 * i + 3] = 255;
  }
  writeFileSync(file, PNG.sync.write(png, { colorType: 2 }));
  return rgb;
}

/** Model + image + fixture.json (depth, epsilon, names, reference logits) in `dir`; `size` x `size` RGB input. */
export async function makeFixture(dir: string, n = 3, seed = 1, size = 32): Promise<FixtureInfo> {
  tf.enableProdMode(); // also silences the cpu backend's "install tfjs-node" banner
  await tf.setBackend('cpu');
  const model = buildResNet(n, seed, size);
  const modelPath = await saveLayersModel(model, dir);
  const imagePath = path.join(dir, 'test.png');
  const rgb = writeTestImage(imagePath, size);
  // Pixels in [0,1] fed as-is (the CLI's default input range), NHWC.
  const logits = tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(rgb, (b) => b / 255), [1, size, size, 3]);
    return Array.from((model.predict(x) as tf.Tensor).dataSync());
  });
  model.dispose();
  const info: FixtureInfo = { dir, modelPath, imagePath, blockNames: blockNames(n), logits };
  writeFileSync(path.join(dir, 'fixture.json'), JSON.stringify({ n, seed, size, bnEpsilon: BN_EPSILON, blockNames: info.blockNames, logits }, null, 1));
  return info;
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const opt = (name: string, dflt: number) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const dir = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--')));
  if (!dir) {
    console.error('usage: node --import tsx bench/resnet20.ts <outDir> [--n 3] [--seed 1]');
    process.exit(2);
  }
  makeFixture(path.resolve(dir), opt('--n', 3), opt('--seed', 1)).then(
    (f) => console.log(JSON.stringify({ modelPath: f.modelPath, imagePath: f.imagePath, logits: f.logits.map((v) => +v.toFixed(5)) })),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
