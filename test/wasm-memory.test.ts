/**
 * tfjs-wasm's heap is limited to 4 GB. A tensor that does not fit must fail with one clear line (WasmMemoryError,
 * a SkipLayerError so an analysis records the layer as skipped) instead of a "memory access out of bounds" crash,
 * and the backend must go on working afterwards.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { analyze } from '../src/engine/analyze';
import type { AnalysisEvent } from '../src/engine/events';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { tempDir, writeGrayPng } from './helpers/fixtures';
import { selectBackend } from '../src/engine/backend';
import { SkipLayerError } from '../src/engine/errors';
import { releaseAbandonedTape, WasmMemoryError } from '../src/engine/wasmMemory';

before(async () => {
  await selectBackend('wasm');
});

test('a tensor larger than the wasm heap fails with a one-line WasmMemoryError; the backend keeps working', () => {
  const before = tf.memory().numTensors;
  // 1.1e9 floats = 4.4 GB: more than the 4 GB heap can ever hold, so malloc fails at once (nothing is written).
  let caught: unknown;
  try {
    tf.tidy(() => tf.broadcastTo(tf.add(tf.ones([1, 1, 1]), 1), [1100, 1000, 1000]));
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof WasmMemoryError, `expected WasmMemoryError, got ${String(caught)}`);
  assert.ok(caught instanceof SkipLayerError, 'an analysis skips the layer with the reason and goes on');
  assert.equal(caught.requestedBytes, 4.4e9);
  assert.match(caught.message, /^the wasm backend ran out of memory \(a 4\.40 GB tensor did not fit; its heap is limited to 4 GB/);
  assert.doesNotMatch(caught.message, /\n/);
  assert.equal(tf.memory().numTensors, before, 'the tidy scope released what it had made');
  // Still usable: a small computation is right.
  const y = tf.tidy(() => tf.sum(tf.mul(tf.range(1, 5), tf.range(1, 5))));
  assert.equal(y.dataSync()[0], 30);
  y.dispose();
});

test('when the heap is full (malloc returns 0), the allocation fails with WasmMemoryError instead of writing at address 0', () => {
  const backend = tf.backend() as unknown as { makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo; disposeData(id: object): void };
  // Allocated, never written: the pages stay untouched, so this costs address space, not memory.
  const held: tf.TensorInfo[] = [];
  let caught: unknown;
  try {
    for (let i = 0; i < 4 && !caught; i++) {
      try {
        held.push(backend.makeOutput([350_000_000], 'float32'));
      } catch (e) {
        caught = e;
      }
    }
  } finally {
    for (const t of held) backend.disposeData(t.dataId);
  }
  assert.ok(held.length >= 1 && held.length <= 3, `${held.length} allocations of 1.4 GB fitted`);
  assert.ok(caught instanceof WasmMemoryError, `expected WasmMemoryError, got ${String(caught)}`);
  assert.equal(caught.requestedBytes, 1.4e9);
  const y = tf.tidy(() => tf.sum(tf.mul(tf.range(1, 5), tf.range(1, 5))));
  assert.equal(y.dataSync()[0], 30);
  y.dispose();
});

test('under tf.profile (the per-sample memory measurement) the error reaches the caller as WasmMemoryError, not a TypeError and an unhandled rejection', async () => {
  const rejections: unknown[] = [];
  const onRejection = (r: unknown) => rejections.push(r);
  process.prependListener('unhandledRejection', onRejection);
  try {
    await assert.rejects(
      tf.profile(() => tf.tidy(() => tf.image.resizeNearestNeighbor(tf.ones([1, 8, 8, 1]) as tf.Tensor4D, [33000, 33000]))),
      (e: unknown) => e instanceof WasmMemoryError,
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(rejections, []);
  } finally {
    process.removeListener('unhandledRejection', onRejection);
  }
});

test('a WasmMemoryError inside tf.grad (as in a SID step): releaseAbandonedTape frees what the pass saved, and the next gradient is right', () => {
  const x = tf.tensor1d([1, 2, 3]);
  const before = tf.memory().numTensors;
  assert.throws(
    () => tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.broadcastTo(tf.reshape(tf.sum(tf.square(v)), [1, 1, 1]), [1100, 1000, 1000])))(x)),
    (e: unknown) => e instanceof WasmMemoryError,
  );
  // tfjs keeps the failed forward pass's saved tensors on its tape; the analysis releases them when it skips the layer.
  assert.ok(tf.memory().numTensors > before, 'tfjs kept the saved tensors of the failed pass');
  releaseAbandonedTape();
  assert.equal(tf.memory().numTensors, before);
  const g = tf.tidy(() => tf.grad((v: tf.Tensor) => tf.sum(tf.square(v)))(x));
  assert.deepEqual(Array.from(g.dataSync()), [2, 4, 6]);
  g.dispose();
  x.dispose();
});

test('analyze(): a layer too large for the wasm heap is skipped with the one-line reason, the run goes on and ends complete, nothing leaks', async () => {
  const dir = tempDir('infodiscard-wasm-oom-');
  // conv (8x8x1) -> upsampling x4125 (33000 x 33000 floats, 4.4 GB: refused before anything is written) -> a conv.
  const input = tfl.input({ shape: [8, 8, 1] });
  const conv = tfl.layers.conv2d({ filters: 1, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv', biasInitializer: 'ones' }).apply(input);
  const up = tfl.layers.upSampling2d({ size: [4125, 4125], name: 'huge' }).apply(conv);
  const model = tfl.model({ inputs: input, outputs: up as tfl.SymbolicTensor });
  const modelPath = await saveLayersModel(model, path.join(dir, 'net'));
  model.dispose();
  const image = writeGrayPng(path.join(dir, 'x.png'), 8, 8, (x, y) => ((x * 3 + y) % 7) / 7);
  const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, maxSteps: 5, samples: 4 };
  const events: AnalysisEvent[] = [];
  const before = tf.memory().numTensors;
  const report = await analyze({ modelPath, images: [image], settings, layers: ['conv', 'huge'], resume: false, onEvent: (e) => events.push(e) });
  assert.equal(report.status, 'complete');
  assert.deepEqual(report.layers.map((l) => l.name), ['conv']);
  const skipped = report.skippedLayers ?? [];
  assert.equal(skipped.length, 1);
  assert.equal(skipped[0].name, 'huge');
  assert.match(skipped[0].reason, /^the wasm backend ran out of memory \(a 4\.36 GB tensor did not fit; its heap is limited to 4 GB/);
  assert.ok(events.some((e) => e.type === 'layerSkipped' && e.layer === 'huge'));
  assert.equal(tf.memory().numTensors, before, 'no tensors left from the failed pass');
});
