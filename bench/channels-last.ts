/**
 * The ONNX executor's channels-last evaluation (src/engine/loaders/onnx/channelsLast.ts) against its plain NCHW
 * evaluation, in one process: the real-scale fixture (bench/resnet18_224.ts) loaded twice, once with
 * INFODISCARD_ONNX_LAYOUT=nchw, and one SID pass (forward + input gradient of K noisy copies up to a stage)
 * timed on each in turn, alternating, so the ratio does not depend on the machine's load. CPU seconds of the
 * process (one wasm thread), the median of the reps. Prints ratios; no assertions.
 *
 *   node --import tsx bench/channels-last.ts [--layers 1,4] [--batch 16] [--reps 3]
 */
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { loadModel } from '../src/engine/loaders';
import type { LoadedModel } from '../src/engine/loaders/types';
import { makeResNet18Fixture, RESNET18_STAGES, stageLabel } from './resnet18_224';
import { arg, table } from './util';

async function load(file: string, layout: 'nchw' | 'nhwc', layers: string[]): Promise<LoadedModel> {
  if (layout === 'nchw') process.env.INFODISCARD_ONNX_LAYOUT = 'nchw';
  else delete process.env.INFODISCARD_ONNX_LAYOUT;
  const model = await loadModel(file);
  delete process.env.INFODISCARD_ONNX_LAYOUT;
  model.optimizeFor?.(layers);
  return model;
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

async function main(): Promise<void> {
  const batch = Number(arg('--batch', '16'));
  const reps = Number(arg('--reps', '3'));
  const fx = await makeResNet18Fixture(path.join(os.tmpdir(), 'infodiscard-profile224'));
  await selectBackend('wasm');
  const layers = arg('--layers', '1,4').split(',').map((i) => RESNET18_STAGES[Number(i) - 1]);
  const models = { nchw: await load(fx.modelPath, 'nchw', layers), nhwc: await load(fx.modelPath, 'nhwc', layers) };
  console.log(`ResNet-18 at 224x224, ${batch} noisy copies per pass, ${reps} reps each, alternating; load average ${os.loadavg()[0].toFixed(1)}`);
  const rows: string[][] = [];
  for (const layer of layers) {
    const x = tf.randomUniform([batch, 224, 224, 3]) as tf.Tensor4D;
    const pass = (m: LoadedModel) => {
      const probe = m.probe(layer);
      const t0 = cpuSeconds();
      const g = tf.tidy(() => tf.grad((xi: tf.Tensor) => tf.sum(tf.square(probe(xi as tf.Tensor4D))))(x));
      g.dataSync();
      const dt = cpuSeconds() - t0;
      const v = g.dataSync().slice(0, 64);
      g.dispose();
      return { dt, v };
    };
    pass(models.nchw); // warm-up (XNNPACK operators, heap growth)
    pass(models.nhwc);
    const t = { nchw: [] as number[], nhwc: [] as number[] };
    let diff = 0;
    for (let r = 0; r < reps; r++) {
      const a = pass(models.nchw);
      const b = pass(models.nhwc);
      t.nchw.push(a.dt);
      t.nhwc.push(b.dt);
      a.v.forEach((p, k) => (diff = Math.max(diff, Math.abs(p - b.v[k]) / (Math.abs(p) + 1e-12))));
    }
    x.dispose();
    const [a, b] = [median(t.nchw), median(t.nhwc)];
    rows.push([stageLabel(layer), a.toFixed(2), b.toFixed(2), `${(b / a).toFixed(3)}×`, diff.toExponential(1)]);
  }
  table(['stage', 'NCHW pass (CPU s)', 'channels-last pass (CPU s)', 'ratio', 'max rel. grad diff'], rows);
  models.nchw.dispose();
  models.nhwc.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
