/**
 * torchvision architectures as PyTorch's exporter writes them (opset 13, fixed 1x3x224x224 input, random weights;
 * scripts/test-data/torchvision-onnx.py with Debian's python3-torch): each loads, lists its layers, matches
 * onnxruntime-node at probed node outputs within 1e-4 of the output's scale, and a short SID on one mid layer
 * meets its constraint. By default a subset (a 2-block ViT at 64x64, ResNet-18, MobileNetV3-S, ShuffleNetV2: about
 * a minute; ConvNeXt-T and Swin-T take 10+ minutes of SID at 224 on one wasm thread, ViT-B/16 about 8 minutes:
 * 6-9 s per noise sample's forward and backward pass at block 5, one sample per pass, under load);
 * INFODISCARD_TORCHVISION=all runs every exported model, or a comma list names some. The exports live in
 * .cache/torchvision-onnx/ (INFODISCARD_TORCHVISION_DIR): made here when torch is installed and they are missing,
 * skipped with the reason when it is not. Per model the log prints: layers, worst ORT difference, SID, ratio and
 * seconds per SID step.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { selectBackend } from '../src/engine/backend';
import { computeBaselines } from '../src/engine/baselines';
import { onnxLoader } from '../src/engine/loaders/onnx';
import { learnSid } from '../src/engine/sid';
import { bytesPerSample, passSize } from '../src/engine/sampleBatch';
import { Rng } from '../src/engine/rng';
import { tempDir } from './helpers/fixtures';
import { ensureTorchvisionExports, type Manifest, TORCHVISION_DIR } from './helpers/torchvision';

const DIR = TORCHVISION_DIR;
const DEFAULT = ['vit_tiny', 'resnet18', 'mobilenet_v3_small', 'shufflenet_v2_x1_0'];
const ALL = ['resnet18', 'resnet50', 'vgg11_bn', 'mobilenet_v2', 'mobilenet_v3_small', 'mobilenet_v3_large', 'efficientnet_b0', 'densenet121', 'squeezenet1_1', 'googlenet', 'shufflenet_v2_x1_0', 'regnet_y_400mf', 'mnasnet1_0', 'convnext_tiny', 'vit_b_16', 'swin_t', 'vit_tiny'];
const wanted = (() => {
  const env = process.env.INFODISCARD_TORCHVISION;
  if (!env) return DEFAULT;
  return env === 'all' ? ALL : env.split(',').map((s) => s.trim()).filter(Boolean);
})();
const PROBES = 6;
const dir = tempDir('infodiscard-tv-');

let manifest: Manifest | null = null;
let skipReason = '';

before(async () => {
  await selectBackend('wasm');
  ({ manifest, skipReason } = ensureTorchvisionExports(wanted));
});

/** The model with the named node outputs also declared as graph outputs, so onnxruntime returns them. */
function withOutputs(file: string, names: string[]): string {
  const model = onnx.ModelProto.decode(readFileSync(file));
  const have = new Set(model.graph!.output!.map((o) => o.name));
  for (const name of names) if (!have.has(name)) model.graph!.output!.push(onnx.ValueInfoProto.create({ name }));
  const out = path.join(dir, `probed-${path.basename(file)}`);
  writeFileSync(out, onnx.ModelProto.encode(model).finish());
  return out;
}

for (const name of wanted) {
  test(`torchvision ${name}: loads, lists layers, matches onnxruntime at probed nodes, short SID meets the constraint`, { timeout: 900_000 }, async (t) => {
    if (skipReason) return t.skip(skipReason);
    const entry = manifest?.[name];
    assert.ok(entry, `${name} is not in ${DIR}/manifest.json`);
    if (entry.error) return t.skip(`PyTorch's exporter could not export ${name}: ${entry.error}`);
    const file = path.join(DIR, entry.file);
    const t0 = Date.now();
    const model = await onnxLoader.load(file, undefined);
    const loadS = (Date.now() - t0) / 1000;
    try {
      const size = entry.size;
      assert.deepEqual(model.input, { height: size, width: size, channels: 3, flat: false, shape: [3, size, size] });
      assert.ok(model.layers.length > 5, `${name}: only ${model.layers.length} layers listed`);
      // Probes: evenly spaced node outputs and the last one.
      const idx = [...new Set([...Array(PROBES).keys()].map((k) => Math.floor(((k + 1) * (model.layers.length - 1)) / PROBES)))];
      const probes = idx.map((i) => model.layers[i]);
      const rng = new Rng(5);
      const x = tf.tensor4d(Float32Array.from({ length: size * size * 3 }, () => rng.normal()), [1, size, size, 3]);
      const session = await ort.InferenceSession.create(withOutputs(file, probes.map((l) => l.name)));
      const nchw = tf.transpose(x, [0, 3, 1, 2]);
      const expected = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', nchw.dataSync() as Float32Array, nchw.shape) });
      nchw.dispose();
      await session.release();
      let worstAll = 0;
      for (const layer of probes) {
        const y = tf.tidy(() => model.probe(layer.name)(x));
        const exp = expected[layer.name];
        assert.ok(exp, `onnxruntime did not return ${layer.name}`);
        assert.deepEqual(y.shape, exp.dims.map(Number), `${name} ${layer.name}: shape`);
        const got = y.dataSync();
        const want = exp.data as Float32Array;
        y.dispose();
        let scale = 0;
        for (const v of want) scale = Math.max(scale, Math.abs(v));
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
        const rel = worst / Math.max(scale, 1e-12);
        worstAll = Math.max(worstAll, rel);
        assert.ok(rel <= 1e-4, `${name} ${layer.name} (${layer.kind}): differs from onnxruntime by ${rel.toExponential(2)} of its scale`);
      }
      x.dispose();
      // Short SID on a mid layer: a few steps on a coarse σ grid; the level calibration must meet the constraint.
      // Transformers: the encoder block output nearest that point (a token sequence [tokens, dim]).
      const at = Math.floor(model.layers.length * 0.4);
      const blockOutputs = model.layers.map((l, i) => [l, i] as const).filter(([l]) => /encoder_layer_\d+\/Add_1_output_0$/.test(l.name));
      const mid = blockOutputs.length > 0 ? blockOutputs.reduce((a, b) => (Math.abs(b[1] - at) < Math.abs(a[1] - at) ? b : a))[0] : model.layers[at];
      const pixels = Float32Array.from({ length: size * size * 3 }, (_, i) => {
        const p = Math.floor(i / 3);
        return 0.5 + 0.4 * Math.sin((p % size) / 7 + (i % 3)) * Math.cos(Math.floor(p / size) / 5);
      });
      const mapping = { description: 'normalize imagenet', scale: [1 / 0.229, 1 / 0.224, 1 / 0.225], offset: [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225] };
      const steps = 3;
      const samples = 2;
      const probe = model.probe(mid.name);
      // Noise samples per pass as the analysis chooses them (src/engine/sampleBatch.ts): ViT-B/16 at 224 needs
      // about 1 GB of wasm heap per sample through 12 blocks, and the heap holds 4 GB.
      const sampleBatch = passSize(samples, await bytesPerSample(probe, size, size, 3));
      const before = tf.memory().numTensors;
      const sid = await learnSid(
        { probe, pixels, height: size, width: size, channels: 3, mapping },
        { alpha: 1.5, tau: 0.01, samples, sampleBatch, maxSteps: steps, minSteps: 1, sigmaMax: 1, sigmaGrid: 8, learningRate: 0.05, seed: 3, targetRelSe: 0.05 },
      );
      assert.equal(tf.memory().numTensors, before, `${name}: SID leaked tensors`);
      assert.ok(Number.isFinite(sid.sidMean), `${name} ${mid.name}: SID ${sid.sidMean}`);
      const ratio = sid.constraintRatio / 1.5;
      assert.ok(Math.abs(ratio - 1) <= 0.1 + 2 * sid.constraintRatioSe / 1.5, `${name} ${mid.name}: constraint ratio ${sid.constraintRatio} ± ${sid.constraintRatioSe}, α 1.5`);
      t.diagnostic(
        `${name}: load ${loadS.toFixed(1)} s, ${model.layers.length} layers, ORT worst ${worstAll.toExponential(1)} over ${probes.length} probes; ` +
          `SID at ${mid.name} (${mid.kind} [${mid.outputShape.join('x')}]) ${sid.sidMean.toFixed(3)} nats, ratio ${sid.constraintRatio.toFixed(3)}±${sid.constraintRatioSe.toFixed(3)}, ` +
          `${sid.steps} steps in ${sid.seconds.toFixed(1)} s (${(sid.seconds / sid.steps).toFixed(2)} s/step incl. calibration, K=${samples}, ${sampleBatch} per pass)`,
      );
    } finally {
      model.dispose();
    }
  });
}

test('torchvision ViT token features: Grad-CAM on the patch grid (class token dropped), gradient norm everywhere, refusal named elsewhere', { timeout: 120_000 }, async (t) => {
  if (skipReason) return t.skip(skipReason);
  const entry = manifest?.vit_tiny;
  if (!entry || entry.error) return t.skip(`vit_tiny not exported${entry?.error ? `: ${entry.error}` : ''}`);
  const model = await onnxLoader.load(path.join(DIR, entry.file), undefined);
  try {
    // The first block's output: the last one reaches the head through its class token only (zero patch gradients).
    const block = model.layers.filter((l) => /encoder_layer_\d+\/Add_1_output_0$/.test(l.name)).at(0);
    assert.ok(block, `no encoder block output among ${model.layers.length} layers`);
    assert.deepEqual(block.outputShape, [17, 64], 'a block output is [class token + 4x4 patches, 64]');
    assert.deepEqual(model.tokenGrid?.(block.name), { skip: 1, height: 4, width: 4 });
    // The patch embedding flattened to [channels, positions] before its transpose is not a token sequence, although
    // 64 channels would fit an 8x8 grid of 8-pixel patches: only the patch convolution's 4x4 grid is read.
    const flat = model.layers.find((l) => l.kind === 'Reshape' && l.outputShape.join('x') === '64x16');
    assert.ok(flat, 'the [64, 16] reshape of the patch embedding is listed');
    assert.equal(model.tokenGrid?.(flat.name) ?? null, null);
    const rng = new Rng(9);
    const x = tf.tensor4d(Float32Array.from({ length: 64 * 64 * 3 }, () => rng.normal()), [1, 64, 64, 3]);
    const b = await computeBaselines(model, block.name, x, 64, 64);
    assert.ok(b.gradCam, 'Grad-CAM on the patch grid');
    assert.match(b.note ?? '', /1 class token dropped, patch tokens read as a 4x4 grid/);
    assert.equal(b.cam, null);
    assert.ok(b.gradNorm.flat().some((v: number) => v > 0), `gradient norm map is all zero: ${JSON.stringify(b.gradNorm[0].slice(0, 4))}`);
    // The feature after the class-token Gather is a vector: no map, and no grid.
    const head = model.layers.find((l) => l.kind === 'Gather' && l.outputShape.length === 1);
    assert.ok(head, 'the class-token Gather is listed');
    assert.equal(model.tokenGrid?.(head.name) ?? null, null);
    const hb = await computeBaselines(model, head.name, x, 64, 64);
    assert.equal(hb.gradCam, null);
    x.dispose();
  } finally {
    model.dispose();
  }
});
