/**
 * How close the wasm backend's convolutions come to its matmul peak at ResNet-18's 224x224 stage sizes (issue 15
 * §2, kernel work): the forward conv (XNNPACK) and the input gradient (our Conv2DBackpropInput,
 * src/engine/kernels/conv2dBackpropInput.ts) for a batch of 8 noise samples, steady state (after warm-up, so the
 * rearranged filter is cached and packed), against one 512x512 matmul in the same process. tf.profile in
 * bench/profile224.ts averages over few repetitions and counts the first call's filter packing; this does not.
 * No assertions; run it on an idle machine.
 *
 *   node --import tsx bench/conv-throughput.ts [--batch 8] [--reps 10]
 */
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { arg, table } from './util';

/** Mean milliseconds of `f` (its result read back and disposed) after two warm-up calls. */
function ms(f: () => tf.Tensor, reps: number): number {
  for (let i = 0; i < 2; i++) f().dispose();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const y = f();
    y.dataSync();
    y.dispose();
  }
  return (performance.now() - t0) / reps;
}

async function main(): Promise<void> {
  await selectBackend('wasm');
  const batch = Number(arg('--batch', '8'));
  const reps = Number(arg('--reps', '10'));
  const a = tf.randomNormal([512, 512]);
  const b = tf.randomNormal([512, 512]);
  const peak = (2 * 512 ** 3) / ms(() => tf.matMul(a, b), 3 * reps) / 1e6;
  console.log(`wasm matmul 512x512: ${peak.toFixed(1)} GFLOP/s; load average ${os.loadavg()[0].toFixed(2)}`);
  // [input size, in channels, out channels, kernel, stride]: the stem, each stage's 3x3 conv and its strided entry.
  const shapes: [number, number, number, number, number][] = [
    [224, 3, 64, 7, 2], [56, 64, 64, 3, 1], [56, 64, 128, 3, 2], [28, 128, 128, 3, 1], [28, 128, 256, 3, 2],
    [14, 256, 256, 3, 1], [14, 256, 512, 3, 2], [7, 512, 512, 3, 1],
  ];
  const rows = shapes.map(([h, c, co, k, s]) => {
    const ho = Math.ceil(h / s);
    const x = tf.randomNormal([batch, h, h, c]) as tf.Tensor4D;
    const w = tf.randomNormal([k, k, c, co]) as tf.Tensor4D;
    const dy = tf.randomNormal([batch, ho, ho, co]) as tf.Tensor4D;
    const gflop = (2 * batch * ho * ho * k * k * c * co) / 1e9;
    const fwd = ms(() => tf.conv2d(x, w, s as 1, 'same'), reps);
    const grad = ms(() => tf.conv2dTranspose(dy, w, [batch, h, h, c], s as 1, 'same'), reps);
    tf.dispose([x, w, dy]);
    const pct = (t: number) => `${((100 * gflop) / (t / 1000) / peak).toFixed(0)} %`;
    return [`${k}x${k} ${c}->${co} /${s} @${h}x${h}`, gflop.toFixed(2), fwd.toFixed(1), pct(fwd), grad.toFixed(1), pct(grad)];
  });
  table(['conv', 'GFLOP', 'forward ms', 'of matmul', 'input grad ms', 'of matmul'], rows);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
