/**
 * One SID pass (K noisy copies forward to a layer and the input gradient of their squared change) on our tfjs
 * interpreter (wasm, one thread) and on onnxruntime (src/engine/native/), in this process, on the same batch:
 * milliseconds each, the ratio, and how far the two answers are apart. ResNet-18 at 224x224 by default (the
 * real-scale fixture's export, made with Debian's torch on first use).
 *
 *   node --import tsx bench/native-pass.ts [--model FILE] [--layers a,b] [--batch 8] [--reps 3] [--threads 1] [--backend wasm|cpu]
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { loadModel } from '../src/engine/loaders';
import { Rng } from '../src/engine/rng';
import { RESNET18_STAGES, resnet18Onnx, stageLabel } from './resnet18_224';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};

async function main() {
  await selectBackend(arg('--backend', 'wasm') as 'wasm' | 'cpu');
  const file = arg('--model', '') || resnet18Onnx();
  const layers = arg('--layers', RESNET18_STAGES.join(',')).split(',');
  const n = Number(arg('--batch', '8'));
  const reps = Number(arg('--reps', '3'));
  const threads = Number(arg('--threads', '1'));
  const model = await loadModel(file);
  const { height: H, width: W, channels: C } = model.input as { height: number; width: number; channels: number };
  const rng = new Rng(1);
  const image = Float32Array.from({ length: H * W * C }, () => rng.uniform() * 2 - 1);
  const noisy = Float32Array.from({ length: n * H * W * C }, (_, i) => image[i % image.length] + 0.3 * (rng.uniform() - 0.5));
  console.log(`${file}, ${n} samples per pass, median of ${reps} after one warm-up; wasm one thread, onnxruntime ${threads} thread(s)`);
  console.log('layer | tfjs ms | onnxruntime ms | ratio | onnxruntime forward ms | value rel diff | grad rel L2 diff');
  for (const layer of layers) {
    const native = await model.nativeProbe!(layer, image, threads);
    if (typeof native === 'string') {
      console.log(`${layer} | onnxruntime not used: ${native}`);
      continue;
    }
    const probe = model.probe(layer);
    const f = tf.keep(tf.tidy(() => probe(tf.tensor4d(image, [1, H, W, C]))));
    const tfjsPass = () =>
      tf.tidy(() => {
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.square(tf.sub(probe(x as tf.Tensor4D), f))) as tf.Scalar)(tf.tensor4d(noisy, [n, H, W, C]));
        return { value: value.dataSync()[0], grad: grad.dataSync().slice() };
      });
    const time = async <T>(f: () => T | Promise<T>) => {
      await f();
      const ms: number[] = [];
      let last: T | undefined;
      for (let r = 0; r < reps; r++) {
        const t = performance.now();
        last = await f();
        ms.push(performance.now() - t);
      }
      return { ms: ms.sort((a, b) => a - b)[Math.floor(reps / 2)], last: last! };
    };
    const a = await time(tfjsPass);
    const b = await time(() => native.squaredChangeAndGrad(noisy, n, 1));
    const fwd = await time(() => native.squaredChange(noisy, n));
    const value = b.last.sq.reduce((s, v) => s + v, 0);
    let d = 0;
    let g = 0;
    for (let i = 0; i < a.last.grad.length; i++) {
      d += (a.last.grad[i] - b.last.grad[i]) ** 2;
      g += a.last.grad[i] ** 2;
    }
    console.log(`${stageLabel(layer)} | ${a.ms.toFixed(0)} | ${b.ms.toFixed(0)} | ${(b.ms / a.ms).toFixed(2)}x | ${fwd.ms.toFixed(0)} | ${Math.abs(value / a.last.value - 1).toExponential(1)} | ${Math.sqrt(d / g).toExponential(1)}`);
    f.dispose();
    await native.dispose();
  }
  model.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
