/**
 * Where a SID step's time goes at 224x224 (issue 15 §2, kernel work): one forward and input-gradient pass of the
 * real-scale fixture (bench/resnet18_224.ts, torchvision ResNet-18 as the engine loads it: BatchNorm folded) up to
 * a layer, for B noise samples, under tf.profile on wasm; kernel time summed per kernel name and per conv shape, with
 * each conv's GFLOP/s against one 512x512 matmul in the same process. Kernel times are wall times: on a shared
 * machine compare shares, not absolute figures. No assertions.
 *
 *   node --import tsx bench/profile224.ts [--layers 1,4] [--batch 4] [--reps 2]
 */
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { loadModel } from '../src/engine/loaders';
import { makeResNet18Fixture, RESNET18_STAGES, stageLabel } from './resnet18_224';
import { arg, table } from './util';

interface KernelRow { name: string; ms: number; flops: number; shape: string }

/** Multiply-add FLOPs (x2) of a conv-like kernel from its shapes (NHWC input, HWIO filter, NHWC output), else 0. */
function convFlops(k: { name: string; inputShapes: unknown[]; outputShapes: unknown[] }): { flops: number; shape: string } {
  const [x, w] = k.inputShapes as number[][];
  const out = k.outputShapes[0] as number[];
  if (/^(Conv2D|FusedConv2D)$/.test(k.name) && w?.length === 4) {
    return { flops: 2 * out.reduce((a, b) => a * b, 1) * w[0] * w[1] * w[2], shape: `${w[0]}x${w[1]} ${w[2]}->${w[3]} @${out[1]}x${out[2]}` };
  }
  if (k.name === 'Conv2DBackpropInput' && w?.length === 4) {
    // dy (x here) [N, H', W', O], filter [kh, kw, I, O], output dx [N, H, W, I]: the forward's FLOPs.
    return { flops: 2 * x.reduce((a, b) => a * b, 1) * w[0] * w[1] * w[2], shape: `${w[0]}x${w[1]} ${w[3]}->${w[2]} @${x[1]}x${x[2]} (grad)` };
  }
  return { flops: 0, shape: '' };
}

async function matmulPeak(n = 512): Promise<number> {
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  const ts: number[] = [];
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    if (i >= 2) ts.push(performance.now() - t0);
  }
  tf.dispose([a, b]);
  ts.sort((p, q) => p - q);
  return (2 * n ** 3) / (ts[0] / 1000) / 1e9;
}

async function main(): Promise<void> {
  const batch = Number(arg('--batch', '4'));
  const reps = Number(arg('--reps', '2'));
  const fx = await makeResNet18Fixture(path.join(os.tmpdir(), 'infodiscard-profile224'));
  await selectBackend('wasm');
  const peak = await matmulPeak();
  console.log(`wasm matmul 512x512: ${peak.toFixed(1)} GFLOP/s (best of 6); load average ${os.loadavg()[0].toFixed(1)}`);
  const model = await loadModel(fx.modelPath);
  const names = arg('--layers', '1,4').split(',').map((i) => RESNET18_STAGES[Number(i) - 1]);
  model.optimizeFor?.(names);
  for (const layer of names) {
    const probe = model.probe(layer);
    const x = tf.randomUniform([batch, 224, 224, 3]) as tf.Tensor4D;
    const step = () => tf.tidy(() => tf.grad((xi: tf.Tensor) => tf.sum(tf.square(probe(xi as tf.Tensor4D))))(x));
    (await Promise.resolve(step())).dispose(); // warm-up
    const rows = new Map<string, KernelRow>();
    let total = 0;
    for (let r = 0; r < reps; r++) {
      const info = await tf.profile(() => step());
      for (const k of info.kernels) {
        const ms = Number(k.kernelTimeMs) || 0;
        const { flops, shape } = convFlops(k);
        const key = shape ? `${k.name} ${shape}` : k.name;
        const row = rows.get(key) ?? { name: k.name, ms: 0, flops: 0, shape };
        row.ms += ms / reps;
        row.flops += flops / reps;
        rows.set(key, row);
        total += ms / reps;
      }
    }
    x.dispose();
    const sorted = [...rows.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 14);
    console.log(`\n== ${stageLabel(layer)}: forward + input gradient of ${batch} samples, ${total.toFixed(0)} ms of kernels (mean of ${reps}) ==`);
    table(['kernel (shape)', 'ms', 'share', 'GFLOP/s', '% of matmul'], sorted.map(([key, r]) => {
      const rate = r.flops > 0 ? r.flops / (r.ms / 1000) / 1e9 : NaN;
      return [key, r.ms.toFixed(1), `${((100 * r.ms) / total).toFixed(0)} %`, Number.isFinite(rate) ? rate.toFixed(1) : '-', Number.isFinite(rate) ? `${((100 * rate) / peak).toFixed(0)} %` : '-'];
    }));
  }
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
