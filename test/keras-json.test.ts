/**
 * Keras architecture JSON (model.to_json()) + weights (model.save_weights()): pairs split from the real Keras 2
 * models in ../shared/data/keras-mnist-dnn-repair by scripts/test-data/split-keras-h5.py (h5py), in Keras 2 and
 * Keras 3 weight layouts. Each loads from either file, gives the same outputs as the original .h5, and hashes as
 * the extension hashes it; a JSON without weights asks for them in one line.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { isUserError } from '../src/engine/errors';
import { loadModel, type LoadedModel } from '../src/engine/loaders';
import { modelSha256 } from '../src/engine/modelHash';
import { findKerasJsonFor, findKerasWeights, isKerasToJson } from '../src/engine/kerasFiles';
import { randomArray, tempDir, writeGrayPng } from './helpers/fixtures';
import { CLI, runCli } from './helpers/cli';

const PYTHON = process.env.INFODISCARD_TEST_PYTHON ?? '/usr/bin/python3';
const DATA = path.resolve('../shared/data/keras-mnist-dnn-repair');
const hasH5py = spawnSync(PYTHON, ['-c', 'import h5py'], { encoding: 'utf8' }).status === 0;
const skip = !existsSync(path.join(DATA, 'mnist1.h5')) ? 'no ../shared data' : !hasH5py ? `no h5py at ${PYTHON} (apt-get install python3-h5py)` : false;
const dir = tempDir('infodiscard-keras-json-');

function split(model: string, json: string, weights: string, keras3 = false) {
  const r = spawnSync(PYTHON, [path.resolve('scripts/test-data/split-keras-h5.py'), path.join(DATA, model), path.join(dir, json), path.join(dir, weights), ...(keras3 ? ['keras3'] : [])], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

before(async () => {
  await selectBackend('wasm');
  if (skip) return;
  split('mnist1.h5', 'mnist1.json', 'mnist1.weights.h5');
  split('mnist2_fc.h5', 'mnist2_fc.json', 'mnist2_fc.h5');
  split('mnist1.h5', 'k3.json', 'k3.weights.h5', true);
  mkdirSync(path.join(dir, 'lonely'));
  copyFileSync(path.join(dir, 'mnist1.json'), path.join(dir, 'lonely', 'arch.json'));
});

/** The last layer's output on a fixed batch of 0..255 inputs (these models were trained on raw pixels). */
function outputs(m: LoadedModel): Float32Array {
  const n = m.input.height! * m.input.width! * m.input.channels;
  return tf.tidy(() => {
    const x = tf.tensor4d(randomArray(2 * n, 7, 255).map(Math.abs), [2, m.input.height!, m.input.width!, m.input.channels]);
    return m.probe(m.layers[m.layers.length - 1].name)(x).dataSync() as Float32Array;
  });
}

async function sameAsOriginal(file: string, original: string, format: string, options = {}) {
  const [m, ref] = [await loadModel(file, options), await loadModel(path.join(DATA, original))];
  try {
    assert.equal(m.format, format);
    assert.deepEqual(m.layers.map((l) => `${l.name}:${l.kind}:${l.outputShape}`), ref.layers.map((l) => `${l.name}:${l.kind}:${l.outputShape}`));
    const [a, b] = [outputs(m), outputs(ref)];
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-6 * (1 + Math.abs(b[i])), `${path.basename(file)} output ${i}: ${a[i]} vs ${b[i]}`);
    return m.sha256;
  } finally {
    m.dispose();
    ref.dispose();
  }
}

async function userError(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isUserError(e), String(e));
    assert.equal((e as Error).message.split('\n').length, 1);
    assert.match((e as Error).message, pattern);
    return true;
  });
}

test('a Keras to_json file is told from TensorFlow.js model.json files and other JSON', { skip }, () => {
  assert.equal(isKerasToJson(JSON.parse(readFileSync(path.join(dir, 'mnist1.json'), 'utf8'))), true);
  assert.equal(isKerasToJson({ modelTopology: { class_name: 'Sequential', config: {} }, format: 'layers-model' }), false);
  assert.equal(isKerasToJson({ name: 'package', version: '1.0.0' }), false);
  assert.equal(isKerasToJson({ class_name: 'Conv2D', config: {} }), false, 'a layer, not a model, without keras_version');
  assert.equal(findKerasWeights(path.join(dir, 'mnist1.json')), path.join(dir, 'mnist1.weights.h5'));
  assert.equal(findKerasWeights(path.join(dir, 'mnist2_fc.json')), path.join(dir, 'mnist2_fc.h5'));
  assert.equal(findKerasJsonFor(path.join(dir, 'mnist1.weights.h5')), path.join(dir, 'mnist1.json'));
  assert.equal(findKerasJsonFor(path.join(DATA, 'mnist1.h5')), undefined);
});

test('JSON + Keras 2 save_weights HDF5 (name.weights.h5 and name.h5) load from either file and match the original .h5', { skip }, async () => {
  const fromJson = await sameAsOriginal(path.join(dir, 'mnist1.json'), 'mnist1.h5', 'keras-json');
  assert.equal(fromJson, await modelSha256(path.join(dir, 'mnist1.json')), 'the loader and the extension hash the pair alike');
  const fromWeights = await sameAsOriginal(path.join(dir, 'mnist1.weights.h5'), 'mnist1.h5', 'keras-h5');
  assert.equal(fromWeights, await modelSha256(path.join(dir, 'mnist1.weights.h5')));
  await sameAsOriginal(path.join(dir, 'mnist2_fc.json'), 'mnist2_fc.h5', 'keras-json');
  await sameAsOriginal(path.join(dir, 'mnist2_fc.h5'), 'mnist2_fc.h5', 'keras-h5');
});

test('JSON + Keras 3 weights layout (layers/<name>/vars) match the original .h5', { skip }, async () => {
  await sameAsOriginal(path.join(dir, 'k3.json'), 'mnist1.h5', 'keras-json');
  await sameAsOriginal(path.join(dir, 'k3.weights.h5'), 'mnist1.h5', 'keras-h5');
});

test('a JSON without weights beside it asks for them; given weights are used', { skip }, async () => {
  const lonely = path.join(dir, 'lonely', 'arch.json');
  await userError(loadModel(lonely), /arch\.json: is a Keras architecture \(model\.to_json\(\)\) without weights: save them with model\.save_weights\(\) as arch\.weights\.h5 or arch\.h5 beside it, or give the weights file \(--weights file\.h5\)/);
  await sameAsOriginal(lonely, 'mnist1.h5', 'keras-json', { weights: path.join(dir, 'mnist1.weights.h5') });
  await userError(loadModel(lonely, { weights: path.join(dir, 'nope.h5') }), /nope\.h5: no such weights file/);
  await userError(loadModel(lonely, { weights: path.join(dir, 'mnist2_fc.h5') }), /mnist2_fc\.h5: weight 0 of layer "dense_1" has shape \[784,50\], the layer needs \[400,100\]/);
});

test('the CLI lists a to_json model, and asks for --weights in one line', { skip: skip || (!existsSync(CLI) && 'run npm run build first') }, () => {
  const ok = runCli(['layers', path.join(dir, 'mnist1.json')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /\(keras-json\), input 28x28x1/);
  assert.match(ok.stdout, /conv2d_1 +Conv2D/);
  const lonely = path.join(dir, 'lonely', 'arch.json');
  const bad = runCli(['layers', lonely]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr.trim(), /^infodiscard: .*arch\.json: .* or give the weights file \(--weights file\.h5\)$/);
  const given = runCli(['layers', lonely, '--weights', path.join(dir, 'k3.weights.h5')]);
  assert.equal(given.code, 0, given.stderr);
  // --weights reaches the worker processes too
  const img = writeGrayPng(path.join(dir, 'digit.png'), 28, 28, (x, y) => (Math.abs(Math.hypot(x - 13.5, y - 13.5) - 8) < 2 ? 1 : 0));
  const out = path.join(dir, 'cli', 'report.json');
  const analysed = runCli(['analyze', lonely, '--weights', path.join(dir, 'mnist1.weights.h5'), '--images', img, '--layers', 'dense_1,dense_2', '--input-range', '0,255', '--max-steps', '3', '--samples', '2', '--workers', '2', '--backend', 'wasm', '--quiet', '--out', out]);
  assert.equal(analysed.code, 0, analysed.stderr);
  const report = JSON.parse(readFileSync(out, 'utf8')) as { model: { format: string }; layers: { name: string }[] };
  assert.equal(report.model.format, 'keras-json');
  assert.deepEqual(report.layers.map((l) => l.name), ['dense_1', 'dense_2']);
});
