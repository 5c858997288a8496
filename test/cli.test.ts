/**
 * The command line, as a user runs it (the built dist/cli.js): the report schema, the HTML page, the incremental
 * report when a layer fails, Ctrl-C, and every kind of bad input giving one line, exit code 2 and no stack trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import type { Report } from '../src/engine/report';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';
import { CLI, expectUserError, runCli } from './helpers/cli';

const dir = tempDir();
const image = writeGrayPng(path.join(dir, 'x.png'), 8, 8, (x, y) => (x + 2 * y) / 21);
const fast = ['--max-steps', '30', '--samples', '8', '--backend', 'wasm', '--quiet'];

const run = runCli;

async function goodModel(name = 'good'): Promise<string> {
  return saveLayersModel(reluConvNet(8, 1), path.join(dir, name));
}

test('analyze writes a report that follows the schema, and an HTML page', async () => {
  const model = await goodModel();
  const out = path.join(dir, 'r', 'report.json');
  const html = path.join(dir, 'r', 'report.html');
  const r = run(['analyze', model, '--images', image, '--out', out, '--html', html, '--layers', 'conv1,conv3', '--seed', '4', ...fast]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Report: .*report\.json/);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  assert.equal(report.schemaVersion, 3);
  assert.equal(report.status, 'complete');
  assert.equal(report.model.format, 'tfjs-layers');
  assert.match(report.model.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(
    Object.keys(report.settings).sort(),
    ['alpha', 'backend', 'decoder', 'inputRange', 'learningRate', 'maxSteps', 'metrics', 'normalize', 'preprocessing', 'preview', 'samples', 'seed', 'sigmaGrid', 'sigmaMax', 'tau', 'warmStart'],
  );
  assert.deepEqual(report.settings.metrics, ['sid']);
  assert.equal(report.settings.decoder, null);
  assert.equal(report.layers[0].ru, undefined, 'metrics not asked for are absent');
  assert.equal(report.settings.backend, 'wasm');
  assert.equal(report.settings.seed, 4);
  assert.deepEqual(report.layers.map((l) => l.name), ['conv1', 'conv3']);
  const layer = report.layers[1];
  assert.deepEqual(layer.outputShape, [4, 4, 2]);
  for (const key of ['mean', 'total', 'std'] as const) assert.ok(Number.isFinite(layer.sid[key]));
  const p = layer.perImage[0];
  for (const key of ['sidMean', 'constraintRatio', 'lambda', 'steps', 'saturated', 'seconds', 'deltaF2'] as const) {
    assert.ok(Number.isFinite(p[key]), `${key} = ${p[key]}`);
  }
  assert.equal(p.map.length, 8);
  assert.equal(p.map[0].length, 8);
  const page = readFileSync(html, 'utf8');
  assert.match(page, /^<!DOCTYPE html>/i);
  assert.ok(page.includes('"conv3"'), 'the report data is embedded');
  assert.doesNotMatch(page, /<script[^>]+src=/, 'self-contained: no external scripts');
});

test('the layers command lists probe-able layers with shapes', async () => {
  const model = await goodModel('listed');
  const r = run(['layers', model, '--backend', 'wasm']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /conv1\s+Conv2D\s+\[8, 8, 4\]/);
  assert.match(r.stdout, /conv3\s+Conv2D\s+\[4, 4, 2\]/);
  // The recommended set (block outputs): the 8x8 stage ends at conv2; conv3 is the output.
  assert.match(r.stdout, /^ {2}conv1 /m);
  assert.match(r.stdout, /^\* conv2 .*recommended: end of the 8x8 stage/m);
  assert.match(r.stdout, /^\* conv3 .*recommended: output/m);
  assert.match(r.stdout, /2 of 3 layers recommended/);
});

test('a layer whose output does not change is skipped with its reason; the run goes on and ends complete', async () => {
  const input = tfl.input({ shape: [8, 8, 1] });
  const c1 = tfl.layers.conv2d({ filters: 2, kernelSize: 3, activation: 'relu', name: 'conv1', biasInitializer: 'ones' }).apply(input);
  const flat = tfl.layers.flatten({ name: 'flat' }).apply(c1);
  const dead = tfl.layers.dense({ units: 3, name: 'dead', kernelInitializer: 'zeros' }).apply(flat) as tfl.SymbolicTensor;
  const after = tfl.layers.dense({ units: 2, name: 'after', kernelInitializer: 'ones' }).apply(dead) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: [after, tfl.layers.dense({ units: 2, name: 'live' }).apply(flat) as tfl.SymbolicTensor] });
  const file = await saveLayersModel(model, path.join(dir, 'dead'));
  const out = path.join(dir, 'dead-report.json');
  // --force: the model's outputs are degenerate by construction (a dead branch), which the pre-run check would flag.
  const r = run(['analyze', file, '--images', image, '--out', out, '--layers', 'all', '--force', ...fast.filter((a) => a !== '--quiet')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /\[3\/5\] dead\s+skipped: its output does not change when the input changes \(delta_f\^2 = 0\)/);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  assert.equal(report.status, 'complete');
  assert.deepEqual(report.skippedLayers?.map((l) => l.name), ['dead', 'after']);
  assert.match(report.skippedLayers![0].reason, /delta_f\^2 = 0/);
  assert.deepEqual(report.layers.map((l) => l.name), ['conv1', 'flat', 'live']);
  tf.dispose(model.getWeights());
});

test('Ctrl-C cancels, keeps finished layers and exits 130', async () => {
  const model = await goodModel('cancel');
  const out = path.join(dir, 'cancel-report.json');
  const child = spawn(process.execPath, [CLI, 'analyze', model, '--images', image, '--out', out, '--max-steps', '5000', '--samples', '8', '--backend', 'wasm', '--layers', 'all']);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (/\[1\/3\]/.test(stderr) && !child.killed) child.kill('SIGINT');
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 130, stderr);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  assert.equal(report.status, 'cancelled');
  assert.ok(report.layers.length >= 1 && report.layers.length < 3, `${report.layers.length} layers kept`);
});

test('--workers 2 runs layers and image groups in two processes and writes the same report as one process', async () => {
  const model = await goodModel('parallel');
  mkdirSync(path.join(dir, 'par-images'), { recursive: true });
  const second = writeGrayPng(path.join(dir, 'par-images', 'y.png'), 8, 8, (x, y) => ((x * y) % 7) / 6);
  const third = writeGrayPng(path.join(dir, 'par-images', 'z.png'), 8, 8, (x, y) => (x > 3 ? 0.9 : 0.1) + y / 80);
  const boxes = path.join(dir, 'par-images', 'boxes.json');
  writeFileSync(boxes, JSON.stringify({ 'y.png': { bbox: [2, 2, 4, 4] }, 'z.png': { bbox: [0, 0, 4, 8] } }));
  const one = path.join(dir, 'par', 'one.json');
  const two = path.join(dir, 'par', 'two.json');
  const common = ['analyze', model, '--images', `${image},${second},${third}`, '--seed', '3', '--metrics', 'concentration', '--boxes', boxes, '--box', '1,1,3,3', ...fast];
  assert.equal(run([...common, '--out', one, '--workers', '1']).code, 0);
  const r = run([...common, '--out', two, '--workers', '2']);
  assert.equal(r.code, 0, r.stderr);
  const a = JSON.parse(readFileSync(one, 'utf8')) as Report;
  const b = JSON.parse(readFileSync(two, 'utf8')) as Report;
  assert.equal(b.status, 'complete');
  assert.deepEqual(b.requestedLayers, a.requestedLayers);
  assert.deepEqual(b.layers.map((l) => l.name), a.layers.map((l) => l.name), 'layers in model order');
  for (const [i, layer] of a.layers.entries()) {
    const other = b.layers[i];
    assert.deepEqual(other.perImage.map((p) => p.image), [0, 1, 2], `${layer.name}: every image, in order`);
    for (const [k, p] of layer.perImage.entries()) assert.deepEqual(other.perImage[k].map, p.map, `${layer.name} image ${k}: same map`);
    assert.ok(Math.abs(other.sid.mean - layer.sid.mean) < 1e-12 && Math.abs(other.sid.std - layer.sid.std) < 1e-12, `${layer.name}: same summary`);
    assert.deepEqual(other.concentration, layer.concentration, `${layer.name}: same concentration summary`);
  }
  // Peak memory: one process in the single-process run, each worker in the parallel one; the first layer's time.
  assert.equal(a.run?.processes.length, 1);
  assert.equal(b.run?.processes.length, 2, 'two worker processes');
  for (const p of [...a.run!.processes, ...b.run!.processes]) assert.ok(p.peakRssMB > 20 && p.peakRssMB < 4000, `${p.peakRssMB} MB`);
  for (const rep of [a, b]) assert.ok(rep.run!.firstLayerSeconds! > 0 && rep.run!.firstLayerSeconds! <= rep.seconds);
  assert.ok(!existsSync(`${two}.parts`), 'the per-worker parts are removed');
});

test('--workers 2 --split-samples always: every layer on both workers (one image), the answer of one process; bad values are refused', async () => {
  const model = await goodModel('split');
  const one = path.join(dir, 'split', 'one.json');
  const two = path.join(dir, 'split', 'two.json');
  const common = ['analyze', model, '--images', image, '--seed', '5', ...fast.filter((a) => a !== '--quiet')];
  assert.equal(run([...common, '--out', one, '--workers', '1']).code, 0);
  const r = run([...common, '--out', two, '--workers', '2', '--split-samples', 'always']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /with the wasm backend in 2 worker processes, each layer's 8 noise samples split over 2\n/);
  const a = JSON.parse(readFileSync(one, 'utf8')) as Report;
  const b = JSON.parse(readFileSync(two, 'utf8')) as Report;
  assert.equal(b.status, 'complete');
  assert.deepEqual(b.layers.map((l) => [l.name, l.perImage[0].steps]), a.layers.map((l) => [l.name, l.perImage[0].steps]));
  for (const [i, layer] of a.layers.entries()) {
    assert.ok(Math.abs(b.layers[i].sid.mean - layer.sid.mean) < 1e-4, `${layer.name}: ${b.layers[i].sid.mean} vs ${layer.sid.mean}`);
  }
  assert.equal(b.run?.processes.length, 2, 'both members of the team');
  // auto leaves an 8x8 input alone (a step costs milliseconds there): the plain split into layers.
  const auto = run([...common, '--out', path.join(dir, 'split', 'auto.json'), '--workers', '2']);
  assert.equal(auto.code, 0, auto.stderr);
  assert.doesNotMatch(auto.stderr, /split over/);
  expectUserError([...common, '--split-samples', 'sometimes'], /--split-samples: expects auto, always, never, got "sometimes"/);
});

test('--native: an ONNX layer runs on onnxruntime by default and on tfjs with --native off, to the same answer; bad values are refused', () => {
  const model = path.join(__dirname, 'fixtures', 'onnx', 'tiny_resnet.onnx');
  const rgb = writeGrayPng(path.join(dir, 'native32.png'), 32, 32, (x, y) => ((x * 7 + y * 3) % 32) / 31);
  const common = ['analyze', model, '--images', rgb, '--layers', '/layer2/Relu_1_output_0', '--seed', '2', '--workers', '1', '--force', ...fast];
  const reports = ['auto', 'off'].map((mode) => {
    const out = path.join(dir, `native-${mode}.json`);
    const r = run([...common, '--out', out, ...(mode === 'off' ? ['--native', 'off'] : [])]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(readFileSync(out, 'utf8')) as Report;
  });
  assert.match(reports[0].layers[0].runtime ?? '', /^onnxruntime 1\.\d+\.\d+ \(cpu, \d+ threads?\)$/);
  assert.equal(reports[1].layers[0].runtime, undefined);
  assert.ok(Math.abs(reports[0].layers[0].sid.mean - reports[1].layers[0].sid.mean) < 0.01, `${reports[0].layers[0].sid.mean} vs ${reports[1].layers[0].sid.mean}`);
  expectUserError([...common, '--native', 'maybe'], /--native: expects auto or off, got "maybe"/);
});

test('--preview writes the first-order map, labelled; --warm-start runs the search from it', async () => {
  const model = await goodModel('preview');
  const out = path.join(dir, 'preview.json');
  const r = run(['analyze', model, '--images', image, '--out', out, '--preview', ...fast.filter((a) => a !== '--quiet')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /first-order preview: an approximation/);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  assert.equal(report.settings.preview, true);
  for (const layer of report.layers) {
    for (const p of layer.perImage) {
      assert.equal(p.stopReason, 'preview');
      assert.equal(p.steps, 0);
      assert.ok(Math.abs(p.constraintRatio / report.settings.alpha - 1) < 0.1, `${layer.name}: the level fit holds the constraint (${p.constraintRatio})`);
    }
  }
  const warm = path.join(dir, 'warm.json');
  assert.equal(run(['analyze', model, '--images', image, '--out', warm, '--warm-start', ...fast]).code, 0);
  const w = JSON.parse(readFileSync(warm, 'utf8')) as Report;
  assert.equal(w.settings.warmStart, true);
  assert.ok(w.layers.every((l) => l.perImage.every((p) => p.stopReason !== 'preview' && p.steps > 0)));
  expectUserError(['analyze', model, '--images', image, '--preview', '--metrics', 'ru', ...fast], /--preview: is a first-order map of SID; RU has no preview/);
});

test('Ctrl-C with --workers cancels every worker and keeps the finished layers', async () => {
  const model = await goodModel('cancel-par');
  const out = path.join(dir, 'cancel-par-report.json');
  const child = spawn(process.execPath, [CLI, 'analyze', model, '--images', image, '--out', out, '--max-steps', '5000', '--samples', '8', '--backend', 'wasm', '--workers', '2', '--layers', 'conv1,conv3']);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (/\[\d\/2\]/.test(stderr) && !child.killed) child.kill('SIGINT');
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 130, stderr);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  assert.equal(report.status, 'cancelled');
  assert.equal(report.layers.length, 1, 'the layer that finished is kept');
});

test('bad model files get one clear line naming the file', async () => {
  const good = await goodModel('bad-base');
  const goodDir = path.dirname(good);
  const variant = (name: string, edit: (json: any) => void, shard: 'copy' | 'drop' | 'short' = 'copy') => {
    const d = path.join(dir, name);
    mkdirSync(d, { recursive: true });
    const json = JSON.parse(readFileSync(good, 'utf8'));
    edit(json);
    writeFileSync(path.join(d, 'model.json'), JSON.stringify(json));
    if (shard !== 'drop') copyFileSync(path.join(goodDir, 'weights.bin'), path.join(d, 'weights.bin'));
    if (shard === 'short') truncateSync(path.join(d, 'weights.bin'), statSync(path.join(d, 'weights.bin')).size - 10);
    return path.join(d, 'model.json');
  };
  const args = (m: string) => ['analyze', m, '--images', image, ...fast];

  const malformed = path.join(dir, 'malformed.json');
  writeFileSync(malformed, '{"modelTopology": {');
  expectUserError(args(malformed), /malformed\.json: is not valid JSON/);
  const notModel = path.join(dir, 'other.json');
  writeFileSync(notModel, '{"name": "package"}');
  expectUserError(args(notModel), /other\.json: is not a TensorFlow\.js model\.json/);
  expectUserError(args(variant('noshard', () => {}, 'drop')), /model\.json: weight file "weights\.bin" listed in model\.json is missing/);
  expectUserError(args(variant('short', () => {}, 'short')), /model\.json: weight file weights\.bin too short: \d+ bytes, the manifest needs \d+/);
  expectUserError(
    args(variant('unknown', (j) => (j.modelTopology.config.layers[1].class_name = 'FancyAttention'))),
    /model\.json: unsupported layer "FancyAttention"/,
  );
  expectUserError(args(variant('nomanifest', (j) => delete j.weightsManifest)), /has no "weightsManifest"/);
  expectUserError([...args(good), '--layers', 'conv9'], /--layers: no layer named "conv9" in .*; available: conv1, conv2, conv3/);
  expectUserError(args(path.join(dir, 'missing', 'model.json')), /missing\/model\.json: no such model file/);
  expectUserError(['analyze', path.join(dir, 'x.h5'), '--images', image], /no such model file/);
});

test('bad images and options get one clear line', async () => {
  const good = await goodModel('opts');
  const base = ['analyze', good, '--images', image, ...fast];
  const text = path.join(dir, 'fake.png');
  writeFileSync(text, 'not an image');
  expectUserError(['analyze', good, '--images', text, ...fast], /fake\.png: not a PNG, JPEG, BMP, GIF, TIFF or WebP image/);
  const truncated = path.join(dir, 'trunc.png');
  writeFileSync(truncated, readFileSync(image).subarray(0, 40));
  expectUserError(['analyze', good, '--images', truncated, ...fast], /trunc\.png: cannot decode this PNG image/);
  expectUserError(['analyze', good, ...fast], /--images: is required/);
  expectUserError([...base, '--alpha=-1'], /--alpha: must be a number in \(0, 100\]/);
  expectUserError([...base, '--alpha', '-1'], /--alpha: write a value that starts with "-" as --alpha=VALUE/);
  expectUserError([...base, '--tau', '2'], /--tau: .* must be in \(0, 1\]/);
  expectUserError([...base, '--samples', '0'], /--samples: must be a whole number from 1 to 1024/);
  expectUserError([...base, '--max-steps', 'many'], /--max-steps: expects a number, got "many"/);
  expectUserError([...base, '--sigma-grid', '1'], /--sigma-grid: must be a whole number from 2/);
  expectUserError([...base, '--input-range', '1,0'], /--input-range: .*lo < hi/);
  expectUserError([...base, '--normalize', '0.5'], /--normalize: expects mean\/std/);
  expectUserError([...base, '--input-size', 'big'], /--input-size: expects HxW/);
  expectUserError([...base.filter((a) => a !== 'wasm' && a !== '--backend'), '--backend', 'gpu'], /--backend: unknown backend "gpu"/);
  expectUserError([...base, '--frobnicate'], /Unknown option '--frobnicate'/);
  expectUserError([...base, '--workers', '0'], /--workers: expects a whole number from 1 to 64 or "auto"/);
  // The new metrics' options: a typo, options for a metric not asked for, a bad box or boxes file.
  expectUserError([...base, '--metrics', 'sid,rue'], /--metrics: unknown metric "rue"; choose from sid, ru, concentration, baselines/);
  expectUserError([...base, '--train-images', dir], /--train-images: only applies to RU; add --metrics ru/);
  expectUserError([...base, '--metrics', 'ru', '--decoder', 'huge'], /--decoder: expects default or light/);
  expectUserError([...base, '--metrics', 'ru', '--decoder-width', '2'], /--decoder-width: must be a whole number from 4 to 256/);
  expectUserError([...base, '--metrics', 'concentration'], /--metrics concentration: needs the object in each image/);
  expectUserError([...base, '--box', '1,1,2,2'], /--box: only applies to concentration/);
  expectUserError([...base, '--metrics', 'concentration', '--box', '1,1,2'], /--box: expects x,y,width,height/);
  const boxes = path.join(dir, 'boxes.json');
  writeFileSync(boxes, '{"x.png": {"bbox": [1, 1, -2, 2]}}');
  expectUserError([...base, '--metrics', 'concentration', '--boxes', boxes], /boxes\.json: .*/);
  expectUserError([...base, '--metrics', 'baselines', '--target-class', '1.5'], /--target-class: must be a whole number/);
  if (!existsSync(path.resolve('node_modules/@tensorflow/tfjs-node/package.json'))) {
    expectUserError(['analyze', good, '--images', image, '--backend', 'tensorflow'], /--backend: @tensorflow\/tfjs-node is not available .*npm install @tensorflow\/tfjs-node/);
  }
});

test('a TensorFlow SavedModel without tfjs-node says what to install and how to convert', { skip: existsSync(path.resolve('node_modules/@tensorflow/tfjs-node/package.json')) && 'tfjs-node is installed' }, async () => {
  const saved = path.join(dir, 'saved');
  mkdirSync(path.join(saved, 'variables'), { recursive: true });
  writeFileSync(path.join(saved, 'saved_model.pb'), Buffer.from([0x08, 0x01]));
  for (const target of [saved, path.join(saved, 'saved_model.pb')]) {
    expectUserError(
      ['analyze', target, '--images', image, ...fast],
      /saved: is a TensorFlow SavedModel, which needs the tensorflow backend: install @tensorflow\/tfjs-node \(npm install @tensorflow\/tfjs-node\).*tensorflowjs_converter --input_format=tf_saved_model/,
    );
  }
});
