/**
 * SID on a transformer block's output in noise passes (issue 14): on a 3-block ViT exported here with Debian's torch,
 * the pass size chosen from the measured memory (src/engine/sampleBatch.ts) and passes of one sample give the same
 * map, ratio and steps as one pass of all K samples (float noise only), and the constraint is met. Skips with the
 * reason when torch is absent.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { onnxLoader } from '../src/engine/loaders/onnx';
import { bytesPerSample, passSize } from '../src/engine/sampleBatch';
import { learnSid } from '../src/engine/sid';
import { tempDir } from './helpers/fixtures';

const PYTHON = '/usr/bin/python3';
const noTorch = !existsSync(PYTHON)
  ? `${PYTHON} not found`
  : spawnSync(PYTHON, ['-c', 'import torch, torchvision, onnx'], { encoding: 'utf8' }).status === 0
    ? null
    : `torch/torchvision/onnx not importable by ${PYTHON} (install Debian python3-torch python3-torchvision python3-onnx)`;

before(() => selectBackend('wasm'));

test('SID at a ViT block output: passes of 1 and the automatic pass size equal one pass of K (float noise); constraint met', { skip: noTorch ?? false, timeout: 180_000 }, async () => {
  const file = path.join(tempDir('infodiscard-vit-sid-'), 'vit3.onnx');
  const code = [
    'import sys, torch',
    'from torchvision.models.vision_transformer import VisionTransformer',
    'torch.manual_seed(0)',
    'm = VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5).eval()',
    "torch.onnx.export(m, torch.randn(1, 3, 32, 32), sys.argv[1], opset_version=13, input_names=['input'], output_names=['logits'])",
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', code, file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const model = await onnxLoader.load(file, undefined);
  try {
    const layer = '/encoder/layers/encoder_layer_1/Add_1_output_0';
    assert.deepEqual(model.layers.find((l) => l.name === layer)?.outputShape, [17, 32]);
    const probe = model.probe(layer);
    const S = 32;
    const pixels = Float32Array.from({ length: S * S * 3 }, (_, i) => 0.5 + 0.4 * Math.sin(i / 7) * Math.cos(i / 53));
    const mapping = { description: 'identity', scale: [1, 1, 1], offset: [0, 0, 0] };
    const K = 4;
    const auto = passSize(K, await bytesPerSample(probe, S, S, 3));
    assert.ok(auto >= 1 && auto <= K);
    const run = (sampleBatch: number) =>
      learnSid(
        { probe, pixels, height: S, width: S, channels: 3, mapping },
        { alpha: 1.5, tau: 0.01, samples: K, sampleBatch, maxSteps: 4, minSteps: 1, sigmaMax: 1, sigmaGrid: 8, learningRate: 0.05, seed: 11, targetRelSe: 0.05 },
      );
    const before = tf.memory().numTensors;
    const whole = await run(K);
    const ones = await run(1);
    assert.equal(tf.memory().numTensors, before, 'no tensors leaked');
    for (const other of [ones, ...(auto === K || auto === 1 ? [] : [await run(auto)])]) {
      assert.equal(other.steps, whole.steps);
      assert.ok(Math.abs(other.constraintRatio - whole.constraintRatio) <= 1e-4 * whole.constraintRatio, `ratio ${other.constraintRatio} vs ${whole.constraintRatio}`);
      let worst = 0;
      for (let i = 0; i < whole.map.length; i++) worst = Math.max(worst, Math.abs(other.map[i] - whole.map[i]));
      assert.ok(worst <= 1e-3, `map differs by ${worst} nats`);
    }
    assert.ok(Math.abs(whole.constraintRatio / 1.5 - 1) <= 0.1 + (2 * whole.constraintRatioSe) / 1.5, `ratio ${whole.constraintRatio} ± ${whole.constraintRatioSe}`);
  } finally {
    model.dispose();
  }
});
