/**
 * tfjs-wasm's heap is limited to 4 GB. A tensor that does not fit must fail with one clear line (WasmMemoryError,
 * a SkipLayerError so an analysis records the layer as skipped) instead of a "memory access out of bounds" crash,
 * and the backend must go on working afterwards.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { SkipLayerError } from '../src/engine/errors';
import { WasmMemoryError } from '../src/engine/wasmMemory';

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
