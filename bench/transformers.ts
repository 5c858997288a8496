/**
 * Transformers at their input size on wasm (issue 14): per torchvision ONNX export in .cache/torchvision-onnx/
 * (scripts/test-data/torchvision-onnx.py), the load time, the layer count, the recommended set, and at the middle
 * encoder block output the engine's per-sample memory estimate (src/engine/sampleBatch.ts), the pass size it gives
 * for K = 16, two timed forward + input-gradient passes of one sample, and the wasm heap's size after. No assertions.
 *
 *   node --import tsx bench/transformers.ts vit_b_16 swin_t vit_tiny
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { onnxLoader } from '../src/engine/loaders/onnx';
import { recommendedFor } from '../src/engine/recommendedLayers';
import { bytesPerSample, passSize } from '../src/engine/sampleBatch';
(async () => {
  await selectBackend('wasm');
  for (const name of process.argv.slice(2)) {
    let t = Date.now();
    const model = await onnxLoader.load(`.cache/torchvision-onnx/${name}.onnx`, undefined);
    const loadS = (Date.now() - t) / 1000;
    const rec = recommendedFor(model);
    const blocks = rec.names.filter((n) => /encoder block/.test(rec.reasons.get(n)!));
    const layer = blocks[Math.floor(blocks.length / 2) - 1];
    const probe = model.probe(layer);
    const size = model.input.height!;
    t = Date.now();
    const per = await bytesPerSample(probe, size, size, 3);
    const estS = (Date.now() - t) / 1000;
    const times: number[] = [];
    for (let rep = 0; rep < 2; rep++) {
      const x = tf.randomNormal([1, size, size, 3]) as tf.Tensor4D;
      t = Date.now();
      const g = tf.tidy(() => tf.grad((i: tf.Tensor) => tf.sum(tf.square(probe(i as tf.Tensor4D))))(x));
      await g.data();
      times.push((Date.now() - t) / 1000);
      g.dispose(); x.dispose();
    }
    const heap = (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length / 1e9;
    console.log(`${name}: load ${loadS.toFixed(1)} s, ${model.layers.length} layers, ${rec.names.length} recommended (${blocks.length} blocks); at ${layer}: est ${(per / 1e6).toFixed(0)} MB/sample (${estS.toFixed(1)} s), pass size for K=16: ${passSize(16, per)}; one-sample fwd+bwd ${times.map((s) => s.toFixed(2)).join(', ')} s; heap ${heap.toFixed(2)} GB`);
    model.dispose();
  }
})();
