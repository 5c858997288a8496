/**
 * Stock wasm kernels vs ours (src/engine/kernels), per op and for one input-gradient step of a ResNet-20-like
 * late stage (3 residual blocks at 8x8x64, K = 16 noise samples). Prints the fastest of several interleaved
 * runs (the machine is shared), and the ratio stock / ours.
 *
 *   node --import tsx bench/kernels-bench.ts [--runs 7]
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { installFusedGradMode, registerWasmKernels, uninstallFusedGradMode } from '../src/engine/kernels';

const RUNS = Number(process.argv[process.argv.indexOf('--runs') + 1]) || 7;
const REPLACED = [tf.Conv2DBackpropInput, tf.MaxPoolGrad, tf.AvgPoolGrad, tf.ResizeNearestNeighborGrad, tf.ResizeBilinearGrad, tf.Identity, tf.Tile, tf.Cast, tf.Slice, tf.BatchMatMul];

type Kernels = Map<string, tf.KernelConfig>;
let stockK: Kernels;
let oursK: Kernels;
let stockBnGrad: tf.GradConfig;
let oursBnGrad: tf.GradConfig;

function use(set: Kernels, names = REPLACED): void {
  for (const n of names) {
    tf.unregisterKernel(n, 'wasm');
    tf.registerKernel(set.get(n)!);
  }
}
function useBnGrad(g: tf.GradConfig): void {
  tf.unregisterGradient(tf.FusedBatchNorm);
  tf.registerGradient(g);
}

/** Fastest of RUNS timings of f (after a warm-up), in ms. */
function time(f: () => void): number {
  // (f's result is dropped: tf.tidy walks whatever it returns, element by element for a typed array)
  tf.tidy(() => { f(); });
  let best = Infinity;
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    tf.tidy(() => { f(); });
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}

function row(name: string, stock: number | null, ours: number): void {
  const s = stock === null ? '      -' : stock.toFixed(2).padStart(7);
  const r = stock === null ? '' : `${(stock / ours).toFixed(1)}x`;
  console.log(`${name.padEnd(58)} ${s} ${ours.toFixed(2).padStart(7)}  ${r}`);
}

/** Times f with the stock kernel `name` and with ours. */
function compare(name: string, kernel: string, f: () => void): void {
  use(stockK, [kernel]);
  const s = time(f);
  use(oursK, [kernel]);
  row(name, s, time(f));
}

function resnetStage(): tfl.LayersModel {
  const inp = tfl.input({ shape: [8, 8, 64] });
  let h: tfl.SymbolicTensor = inp;
  for (let b = 0; b < 3; b++) {
    let y = tfl.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same' }).apply(h) as tfl.SymbolicTensor;
    y = tfl.layers.batchNormalization().apply(y) as tfl.SymbolicTensor;
    y = tfl.layers.activation({ activation: 'relu' }).apply(y) as tfl.SymbolicTensor;
    y = tfl.layers.conv2d({ filters: 64, kernelSize: 3, padding: 'same' }).apply(y) as tfl.SymbolicTensor;
    y = tfl.layers.batchNormalization().apply(y) as tfl.SymbolicTensor;
    h = tfl.layers.activation({ activation: 'relu' }).apply(tfl.layers.add().apply([h, y]) as tfl.SymbolicTensor) as tfl.SymbolicTensor;
  }
  return tfl.model({ inputs: inp, outputs: h });
}

async function main(): Promise<void> {
  setWasmPaths(path.resolve(__dirname, '../node_modules/@tensorflow/tfjs-backend-wasm/dist') + '/');
  await tf.setBackend('wasm');
  await tf.ready();
  stockK = new Map(REPLACED.map((n) => [n, tf.getKernel(n, 'wasm')!]));
  stockBnGrad = tf.getGradient(tf.FusedBatchNorm)!;
  registerWasmKernels();
  oursK = new Map(REPLACED.map((n) => [n, tf.getKernel(n, 'wasm')!]));
  oursBnGrad = tf.getGradient(tf.FusedBatchNorm)!;

  const K = 16;
  const r = (shape: number[]) => tf.keep(tf.randomNormal(shape, 0, 1, 'float32', 1));
  const w3 = r([3, 3, 64, 64]) as tf.Tensor4D;
  const w3s2 = r([3, 3, 32, 64]) as tf.Tensor4D;
  const w1s2 = r([1, 1, 32, 64]) as tf.Tensor4D;
  const dw = r([3, 3, 64, 1]) as tf.Tensor4D;
  const x8 = r([K, 8, 8, 64]) as tf.Tensor4D;
  const x16 = r([K, 16, 16, 64]) as tf.Tensor4D;
  const x16c32 = r([K, 16, 16, 32]) as tf.Tensor4D;
  const dy8 = r([K, 8, 8, 64]) as tf.Tensor4D;
  const v64 = r([1, 1, 1, 64]);
  const ds = (t: tf.Tensor) => t.dataSync();

  console.log(`wasm, K=${K}, fastest of ${RUNS} runs, ms${' '.repeat(30)}   stock    ours  stock/ours`);
  row('Conv2D forward 8x8x64 3x3 (reference)', null, time(() => ds(tf.conv2d(x8, w3, 1, 'same'))));
  compare('Conv2DBackpropInput 8x8x64 3x3 s1', tf.Conv2DBackpropInput, () => ds(tf.conv2dTranspose(dy8, w3, [K, 8, 8, 64], 1, 'same')));
  compare('Conv2DBackpropInput 16x16x32 -> 8x8x64 3x3 s2', tf.Conv2DBackpropInput, () => ds(tf.conv2dTranspose(dy8, w3s2, [K, 16, 16, 32], 2, 'same')));
  compare('Conv2DBackpropInput 16x16x32 -> 8x8x64 1x1 s2', tf.Conv2DBackpropInput, () => ds(tf.conv2dTranspose(dy8, w1s2, [K, 16, 16, 32], 2, 'valid')));
  row('Conv2DBackpropFilter 8x8x64 3x3 (added)', null, time(() => ds(tf.engine().runKernel(tf.Conv2DBackpropFilter, { x: x8, dy: dy8 }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, 64, 64] } as never) as tf.Tensor)));
  row('DepthwiseConv2dNative forward 16x16x64 (reference)', null, time(() => ds(tf.depthwiseConv2d(x16, dw, 1, 'same'))));
  row('DepthwiseConv2dNativeBackpropInput 16x16x64 s1 (added)', null, time(() => ds(tf.grad((v: tf.Tensor) => tf.sum(tf.depthwiseConv2d(v as tf.Tensor4D, dw, 1, 'same')))(x16))));
  row('DepthwiseConv2dNativeBackpropInput 16x16x64 s2 (added)', null, time(() => ds(tf.grad((v: tf.Tensor) => tf.sum(tf.depthwiseConv2d(v as tf.Tensor4D, dw, 2, 'same')))(x16))));
  compare('MaxPoolGrad 16x16x64 2x2 (stock is wrong)', tf.MaxPoolGrad, () => ds(tf.grad((v: tf.Tensor) => tf.sum(tf.maxPool(v as tf.Tensor4D, 2, 2, 'valid')))(x16)));
  compare('AvgPoolGrad 16x16x64 3x3 s1 same (stock is wrong at borders)', tf.AvgPoolGrad, () => ds(tf.grad((v: tf.Tensor) => tf.sum(tf.avgPool(v as tf.Tensor4D, 3, 1, 'same')))(x16)));
  compare('ResizeNearestNeighborGrad 8x8x64 -> 16x16 (stock is wrong)', tf.ResizeNearestNeighborGrad, () => ds(tf.grad((v: tf.Tensor) => tf.sum(tf.image.resizeNearestNeighbor(v as tf.Tensor4D, [16, 16])))(x8)));
  compare('ResizeBilinearGrad 8x8x64 -> 16x16 half-pixel (stock is wrong)', tf.ResizeBilinearGrad, () => ds(tf.grad((v: tf.Tensor) => tf.sum(tf.image.resizeBilinear(v as tf.Tensor4D, [16, 16], false, true)))(x8)));
  compare('Tile [1,1,1,64] -> [16,8,8,64]', tf.Tile, () => ds(tf.tile(v64, [K, 8, 8, 1])));
  {
    const w = r([4096, 128]);
    const dy = r([K, 128]);
    compare('BatchMatMul dy * W^T (Dense 4096->128 input gradient)', tf.BatchMatMul, () => ds(tf.matMul(dy, w, false, true)));
  }
  compare('Identity (clone) 16x8x8x64', tf.Identity, () => ds(tf.clone(x8)));
  compare('Cast float32 -> float32 16x8x8x64 (ReLU gradient)', tf.Cast, () => ds(tf.cast(x8, 'float32')));
  compare('Slice 16x16x16x64 -> 16x14x14x64 (Pad gradient)', tf.Slice, () => ds(tf.slice(x16, [0, 1, 1, 0], [K, 14, 14, 64])));
  {
    const [mean, variance, offset, scale] = [r([64]), tf.keep(tf.add(tf.abs(r([64])), 0.5)), r([64]), r([64])];
    const f = () => ds(tf.grad((v: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm(v, mean, variance, offset, scale, 1e-3), dy8)))(x8));
    useBnGrad(stockBnGrad);
    const s = time(f);
    useBnGrad(oursBnGrad);
    row('BatchNorm input gradient 8x8x64 (gradient function)', s, time(f));
  }

  // One SID-like step: d/d(sigma) of mean ||f(x + sigma*noise) - f(x)||^2 through the stage.
  const model = resnetStage();
  const x = r([1, 8, 8, 64]);
  const noise = r([K, 8, 8, 64]);
  const f0 = tf.keep(model.apply(x, { training: false }) as tf.Tensor);
  const step = tf.valueAndGrad((s: tf.Tensor) => {
    const d = tf.sub(model.apply(tf.add(x, tf.mul(s, noise)), { training: false }) as tf.Tensor, f0);
    return tf.mean(tf.sum(tf.reshape(tf.square(d), [K, -1]), 1)) as tf.Scalar;
  });
  const sigma = tf.keep(tf.fill([1, 8, 8, 1], 0.1));
  const runStep = () => ds(step(sigma).grad);
  const configs: [string, () => void][] = [
    ['stock kernels (+ Conv2DBackpropFilter, needed to run)', () => { use(stockK); useBnGrad(stockBnGrad); uninstallFusedGradMode(); }],
    ['+ Conv2DBackpropInput', () => { use(oursK, [tf.Conv2DBackpropInput]); }],
    ['+ Identity, Tile, Cast, Slice, MatMul, BatchNorm gradient', () => { use(oursK); useBnGrad(oursBnGrad); }],
    ['+ fused ops unfused under tf.grad (= registerWasmKernels)', () => { installFusedGradMode(); }],
  ];
  console.log(`\nResNet-20 stage 3 input-gradient step (3 blocks, 8x8x64, K=${K}), ms/step`);
  let first = 0;
  for (const [name, apply] of configs) {
    apply();
    const t = time(runStep);
    if (!first) first = t;
    console.log(`${name.padEnd(58)} ${t.toFixed(1).padStart(7)}  ${(first / t).toFixed(2)}x vs stock`);
  }
  const prof = await tf.profile(() => { runStep(); });
  const byKernel = new Map<string, number>();
  for (const k of prof.kernels) byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + (k.kernelTimeMs as number));
  console.log('kernel time in one step (ours):', [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([n, t]) => `${n} ${t.toFixed(1)}`).join(', '));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
