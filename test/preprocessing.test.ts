/**
 * Preprocessing profiles (issue 13 §1): presets and BGR in the input mapping, detection with provenance (a layers
 * model with a Rescaling layer, a torchvision-style ONNX graph and ONNX metadata built here, a plain model), the
 * stored profile's round trip, the degenerate-output check on a third-party Keras checkpoint that wants 0-255
 * pixels, and the CLI's exit 2 / --force.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tfl from '@tensorflow/tfjs-layers';
import { onnx } from 'onnx-proto';
import { selectBackend } from '../src/engine/backend';
import { loadModel } from '../src/engine/loaders';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { makeInputMapping, mappingOptions, toModelUnits } from '../src/engine/inputMapping';
import {
  customProfile,
  detectProfile,
  findStoredProfile,
  presetProfile,
  profileFileName,
  profileFromFound,
  profileSettings,
  readStoredProfile,
  writeStoredProfile,
} from '../src/engine/preprocessing';
import { checkPreprocessingFiles, cliFlagsFor, judgeOutputs } from '../src/engine/preprocessing/check';
import { detectFromGraphSignature, rangeFromScale } from '../src/engine/preprocessing/detect';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';
import { runCli } from './helpers/cli';
import { AnalysisPool } from '../src/worker/client';

before(() => selectBackend('wasm'));

const dir = tempDir('infodiscard-prep-');
const DATA = path.resolve('../shared/data/keras-mnist-dnn-repair');
const EPOCH20 = path.join(DATA, 'saved-model-20-0.99.hdf5');
const hasData = existsSync(EPOCH20);

/** MNIST-like digits, white on black, as test/keras.test.ts draws them: a ring, a bar, a seven. */
const ZERO = (x: number, y: number) => Math.max(0, 1 - Math.abs(Math.hypot((x - 13.5) / 0.8, y - 13.5) - 8) / 2.5);
const ONE = (x: number, y: number) => (y >= 5 && y < 23 && x >= 12 && x < 16 ? 1 : 0);
const SEVEN = (x: number, y: number) => ((y >= 5 && y < 8 && x >= 7 && x < 21) || (Math.abs(x - (20 - (y - 5) * 0.5)) < 1.6 && y >= 5 && y < 24) ? 1 : 0);
const digits = path.join(dir, 'digits');
mkdirSync(digits);
writeGrayPng(path.join(digits, 'zero.png'), 28, 28, ZERO);
writeGrayPng(path.join(digits, 'one.png'), 28, 28, ONE);
writeGrayPng(path.join(digits, 'seven.png'), 28, 28, SEVEN);

test('presets map [0,1] pixels as named; BGR swaps the channels and keeps scale/offset in model order', () => {
  const px = new Float32Array([1, 0.5, 0, 0.2, 0.4, 0.6]); // two RGB pixels
  const m255 = makeInputMapping(mappingOptions(profileSettings(presetProfile('[0,255]', 't'))), 3);
  assert.deepEqual(Array.from(toModelUnits(px, m255)).map((v) => Math.round(v * 1000) / 1000), [255, 127.5, 0, 51, 102, 153]);
  const caffe = presetProfile('caffe-bgr', 't');
  const mc = makeInputMapping(mappingOptions(profileSettings(caffe)), 3);
  assert.equal(mc.channelOrder, 'bgr');
  assert.match(mc.description, /bgr$/);
  const out = Array.from(toModelUnits(px, mc));
  // B = 255*blue - 103.939, G = 255*green - 116.779, R = 255*red - 123.68
  const want = [0 - 103.939, 127.5 - 116.779, 255 - 123.68, 153 - 103.939, 102 - 116.779, 51 - 123.68];
  out.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-3, `unit ${i}: ${v} vs ${want[i]}`));
  assert.throws(() => makeInputMapping({ channelOrder: 'bgr' }, 1), /3-channel/);
  // The default profile keeps the report key of runs from before profiles (inputRange null = [0,1]).
  assert.equal(profileSettings(presetProfile('[0,1]', 'default')).inputRange, null);
  assert.equal(customProfile({ normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } }, 'x').preset, 'imagenet');
  assert.equal(customProfile({ inputRange: [0, 2] }, 'x').preset, 'custom');
});

let rescalingModel = '';

test('a layers model with a Rescaling layer is detected as 0-255, with its source; a plain model gets the default', async () => {
  const input = tfl.input({ shape: [8, 8, 1] });
  const scaled = tfl.layers.rescaling({ scale: 1 / 255, name: 'rescale_in' }).apply(input) as tfl.SymbolicTensor;
  const y = tfl.layers.conv2d({ filters: 2, kernelSize: 3, name: 'conv' }).apply(scaled) as tfl.SymbolicTensor;
  const withRescale = await saveLayersModel(tfl.model({ inputs: input, outputs: y }), path.join(dir, 'rescaling'));
  rescalingModel = withRescale;
  const m = await loadModel(withRescale);
  const p = detectProfile(m);
  assert.equal(p.preset, '[0,255]');
  assert.match(p.source, /^detected: Rescaling layer "rescale_in".*0–255/);
  m.dispose();

  const plain = await loadModel(await saveLayersModel(reluConvNet(), path.join(dir, 'plain')));
  assert.equal(plain.preprocessingHint, undefined);
  assert.deepEqual([detectProfile(plain).preset, detectProfile(plain).source], ['[0,1]', 'default']);
  plain.dispose();
});

/** A tiny ONNX classifier: input [1,3,S,S] -> Conv(k x k / stride, `filters`) -> Relu -> GlobalAveragePool -> Flatten -> Gemm. */
function writeOnnx(file: string, opts: { inputName: string; size: number; filters: number; kernel: number; stride: number; metadata?: Record<string, string> }): string {
  const { filters: F, kernel: K } = opts;
  const floats = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.1);
  const tensor = (name: string, dims: number[], data: Float32Array) =>
    onnx.TensorProto.create({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(data.buffer) });
  const attr = (name: string, ints: number[]) => onnx.AttributeProto.create({ name, ints, type: onnx.AttributeProto.AttributeType.INTS });
  const graph = onnx.GraphProto.create({
    name: 'g',
    node: [
      onnx.NodeProto.create({ opType: 'Conv', input: [opts.inputName, 'conv1.weight'], output: ['c1'], name: 'conv1', attribute: [attr('kernel_shape', [K, K]), attr('strides', [opts.stride, opts.stride]), attr('pads', [K >> 1, K >> 1, K >> 1, K >> 1])] }),
      onnx.NodeProto.create({ opType: 'Relu', input: ['c1'], output: ['r1'], name: 'relu' }),
      onnx.NodeProto.create({ opType: 'GlobalAveragePool', input: ['r1'], output: ['p1'], name: 'pool' }),
      onnx.NodeProto.create({ opType: 'Flatten', input: ['p1'], output: ['f1'], name: 'flatten' }),
      onnx.NodeProto.create({ opType: 'Gemm', input: ['f1', 'fc.weight', 'fc.bias'], output: ['logits'], name: 'fc', attribute: [onnx.AttributeProto.create({ name: 'transB', i: 1, type: onnx.AttributeProto.AttributeType.INT })] }),
    ],
    initializer: [tensor('conv1.weight', [F, 3, K, K], floats(F * 3 * K * K, 1)), tensor('fc.weight', [10, F], floats(10 * F, 2)), tensor('fc.bias', [10], floats(10, 3))],
    input: [
      onnx.ValueInfoProto.create({
        name: opts.inputName,
        type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 3 }, { dimValue: opts.size }, { dimValue: opts.size }] } } },
      }),
    ],
    output: [onnx.ValueInfoProto.create({ name: 'logits', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 10 }] } } } })],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph,
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
  return file;
}

test('a torchvision-style ONNX graph suggests ImageNet mean/std with a center crop; ONNX metadata wins over the graph', async () => {
  const tv = await loadModel(writeOnnx(path.join(dir, 'resnet-like.onnx'), { inputName: 'input', size: 224, filters: 64, kernel: 7, stride: 2 }));
  const p = detectProfile(tv);
  assert.deepEqual([p.preset, p.resize, p.channelOrder], ['imagenet', 'center-crop', 'rgb']);
  assert.match(p.source, /^detected: torchvision-style ONNX graph \(input "input" 3×224×224 NCHW, ResNet.*7×7\/2 stem with 64 filters\)/);
  tv.dispose();

  const meta = await loadModel(
    writeOnnx(path.join(dir, 'meta.onnx'), { inputName: 'data', size: 32, filters: 64, kernel: 7, stride: 2, metadata: { mean_values: '123.675,116.28,103.53', std_values: '58.395,57.12,57.375' } }),
  );
  const q = detectProfile(meta);
  assert.equal(q.preset, 'imagenet', 'mean/std on 0-255 are the ImageNet statistics');
  assert.match(q.source, /ONNX metadata "mean_values", "std_values"/);
  meta.dispose();

  const other = await loadModel(writeOnnx(path.join(dir, 'plain.onnx'), { inputName: 'x', size: 32, filters: 8, kernel: 5, stride: 1 }));
  assert.equal(detectProfile(other).source, 'default', 'a 5x5/1 stem with 8 filters says nothing');
  other.dispose();
});

test('graph model signature: an integer input or a scalar Mul/RealDiv on the input says 0-255; other ops say nothing', () => {
  assert.match(detectFromGraphSignature({ inputName: 'images', dtype: 'int32', consumers: [] })?.source ?? '', /input "images" is int32, so the model takes 0–255 pixels/);
  assert.equal(detectFromGraphSignature({ inputName: 'x', dtype: 'float32', consumers: [{ name: 'truediv', op: 'RealDiv', scalar: 127.5 }] })?.preset, '[0,255]');
  assert.equal(detectFromGraphSignature({ inputName: 'x', dtype: 'float32', consumers: [{ name: 'mul', op: 'Mul', scalar: 1 / 255 }] })?.preset, '[0,255]');
  assert.equal(detectFromGraphSignature({ inputName: 'x', dtype: 'float32', consumers: [{ name: 'conv', op: 'Conv2D', scalar: null }] }), null);
  assert.equal(rangeFromScale(2, -1, 'layer')?.preset, '[0,1]', 'x*2-1: [0,1] pixels to [-1,1]');
  assert.equal(rangeFromScale(0.001, 0, 'layer'), null, 'a scale that fits neither');
});

test('stored profiles: atomic round trip, exact match, then the same path, then a sibling checkpoint', () => {
  const folder = path.join(dir, 'store');
  const model = path.join(dir, 'ckpt', 'saved-model-05.hdf5');
  const profile = presetProfile('[0,255]', 'user');
  const file = writeStoredProfile(folder, model, 'a'.repeat(64), profile);
  assert.equal(path.basename(file), profileFileName(model, 'a'.repeat(64)));
  assert.equal(path.basename(file), 'saved-model-05-aaaaaaaaaaaa.preprocessing.json');
  assert.equal(path.dirname(file), path.join(folder, 'preprocessing'), 'in a sub-folder of the reports folder');
  assert.deepEqual(readdirSync(path.dirname(file)), [path.basename(file)], 'no temp file left');
  assert.deepEqual(readStoredProfile(file).profile, profile);
  const exact = findStoredProfile([path.join(dir, 'nowhere'), folder], model, 'a'.repeat(64));
  assert.deepEqual([exact?.match, exact && profileFromFound(exact).source], ['exact', 'user']);
  const changed = findStoredProfile([folder], model, 'b'.repeat(64));
  assert.equal(changed?.match, 'same-path');
  assert.match(profileFromFound(changed!).source, /^user \(saved for an earlier version of this file\)$/);
  const sibling = findStoredProfile([folder], path.join(dir, 'ckpt', 'saved-model-10.hdf5'), 'c'.repeat(64));
  assert.equal(sibling?.match, 'sibling');
  assert.match(profileFromFound(sibling!).source, /saved for saved-model-05\.hdf5/);
  assert.equal(findStoredProfile([folder], path.join(dir, 'other', 'm.onnx'), 'd'.repeat(64)), null);
  assert.equal(findStoredProfile([folder], path.join(dir, 'ckpt', 'other-model.hdf5'), 'e'.repeat(64)), null, 'another model in the same folder is not of the series');
  writeFileSync(file, '{"profile": {"preset": 3}}');
  assert.throws(() => readStoredProfile(file), /preprocessing profile .*; fix or delete the file/);
});

test('judgeOutputs: same output, uniform, NaN and huge logits are degenerate; varied confident ones are not', () => {
  const same = judgeOutputs(new Float32Array([0.1, 0.2, 0.1, 0.2]), 2, 2, 'logits');
  assert.ok(same.degenerate && same.problems.includes('the same output for every image'));
  assert.ok(judgeOutputs(new Float32Array([NaN, 1, 0, 1]), 2, 2, 'logits').problems.includes('NaN or infinite outputs'));
  assert.match(judgeOutputs(new Float32Array([5000, -3000, -4000, 6000]), 2, 2, 'logits').problems.join(), /saturated: logits up to 6\.00e\+3/);
  const fine = judgeOutputs(new Float32Array([4, -2, -1, 3]), 2, 2, 'logits');
  assert.deepEqual([fine.degenerate, fine.top.map((t) => t[0].index)], [false, [0, 1]]);
  assert.equal(judgeOutputs(new Float32Array([0.1, 0.1, 0.1, 0.1]), 2, 2, 'raw').degenerate, false, 'a non-classifier is only judged on NaN/Inf');
});

test('the 0-255 Keras checkpoint: at [0,1] the check catches it and recommends 0-255; at 0-255 it passes', { skip: !hasData && 'no ../shared data' }, async () => {
  const bad = await checkPreprocessingFiles({ modelPath: EPOCH20, images: [digits], profile: presetProfile('[0,1]', 'default') });
  assert.equal(bad.output.kind, 'logits');
  assert.ok(bad.chosen.degenerate, 'degenerate at [0,1]');
  assert.ok(bad.chosen.problems.includes('near-uniform probabilities'), bad.chosen.problems.join('; '));
  assert.equal(bad.recommended?.profile.preset, '[0,255]');
  assert.match(bad.message ?? '', /^preprocessing \[0, 1\] gives degenerate outputs \(.*\); 0–255 does not/);
  const good = await checkPreprocessingFiles({ modelPath: EPOCH20, images: [digits], profile: presetProfile('[0,255]', 'user') });
  assert.equal(good.chosen.degenerate, false);
  assert.equal(good.recommended, null);
  // Top predictions per image (files in name order: one, seven, zero).
  assert.deepEqual(good.chosen.top.map((t) => t[0].index), [1, 7, 0]);
  assert.ok(good.chosen.top.every((t) => t.length === 3 && t[0].score > 0.9));
});

test('CLI: exit 2 with the fix at [0,1], --force keeps it, --preset and a stored profile pass and are printed', { skip: !hasData && 'no ../shared data' }, () => {
  const out = path.join(dir, 'cli', 'report.json');
  const fast = ['--layers', 'dense_1', '--max-steps', '3', '--min-steps', '3', '--samples', '4', '--backend', 'wasm', '--quiet', '--workers', '1', '--out', out];
  const r = runCli(['analyze', EPOCH20, '--images', digits, ...fast]);
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^infodiscard: .*saved-model-20-0\.99\.hdf5: preprocessing \[0, 1\] gives degenerate outputs .*: rerun with --preset 0,255 \(or --force to keep \[0, 1\]\)$/);
  assert.equal(existsSync(out), false, 'nothing analysed');

  const forced = runCli(['analyze', EPOCH20, '--images', digits, ...fast, '--force']);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /Warning: preprocessing \[0, 1\] gives degenerate outputs/);
  assert.match(forced.stdout, /Preprocessing: \[0, 1\] \(default\)/);

  const preset = runCli(['analyze', EPOCH20, '--images', digits, ...fast, '--preset', '0,255']);
  assert.equal(cliFlagsFor(presetProfile('[-1,1]', 'x')), '--preset=-1,1', 'a value with a leading "-" in the = form');
  assert.equal(preset.code, 0, preset.stderr);
  assert.match(preset.stdout, /Preprocessing: 0–255 \(cli\)\nTop predictions at 0–255 \(class:score\): #1 1:1\.00/);

  writeStoredProfile(path.dirname(out), EPOCH20, '', presetProfile('[0,255]', 'user'));
  // Saved under another hash: found by the model path.
  const stored = runCli(['analyze', EPOCH20, '--images', digits, ...fast]);
  assert.equal(stored.code, 0, stored.stderr);
  assert.match(stored.stdout, /Preprocessing: 0–255 \(user \(saved for an earlier version of this file\); .*preprocessing\.json\)/);
});


test('worker: checkPreprocessing detects the Rescaling layer and checks at 0-255 (a raw-output model: judged on NaN/Inf only)', { timeout: 120_000 }, async () => {
  assert.ok(rescalingModel, 'the Rescaling test ran first');
  const images = path.join(dir, 'small');
  mkdirSync(images);
  [0, 1].forEach((i) => writeGrayPng(path.join(images, `s${i}.png`), 8, 8, (x, y) => ((x + 3 * y + 7 * i) % 11) / 11));
  const pool = new AnalysisPool(path.resolve('dist/worker.js'));
  try {
    const r = await pool.checkPreprocessing({ modelPath: rescalingModel, images: [images], backend: 'wasm' });
    assert.equal(r.status, 'complete');
    if (r.status !== 'complete') return;
    assert.equal(r.outcome.detected?.preset, '[0,255]');
    assert.match(r.outcome.detected?.source ?? '', /Rescaling layer "rescale_in"/);
    assert.equal(r.outcome.check.chosen.profile.preset, '[0,255]', 'the detected profile is the one checked');
    assert.deepEqual([r.outcome.check.output.kind, r.outcome.check.chosen.degenerate, r.outcome.check.recommended], ['raw', false, null]);
    assert.deepEqual(r.outcome.check.alternatives.map((a) => a.profile.preset), ['[0,1]', '[-1,1]']);
    await assert.rejects(pool.checkPreprocessing({ modelPath: path.join(dir, 'missing.onnx'), images: [images] }), /missing\.onnx: no such model file/);
  } finally {
    await pool.dispose();
  }
});

test('no recommendation without varied predictions: the untrained epoch-0 family model is degenerate at [0,1] but 0-255 (one class, confident) is not offered', async () => {
  const epoch0 = path.resolve('media/families/epochs/epoch-00.onnx');
  const r = await checkPreprocessingFiles({ modelPath: epoch0, images: [path.resolve('media/families/images')], profile: presetProfile('[0,1]', 'manifest') });
  assert.equal(r.output.kind, 'logits', 'a vector output without softmax is read as logits');
  assert.ok(r.chosen.degenerate);
  const at255 = r.alternatives.find((a) => a.profile.preset === '[0,255]')!;
  assert.equal(at255.degenerate, false);
  assert.equal(new Set(at255.top.map((t) => t[0].index)).size, 1, 'one class for all 8 images');
  assert.equal(r.recommended, null);
  assert.match(r.message ?? '', /no other preprocessing tried gives varied predictions/);
  const trained = await checkPreprocessingFiles({ modelPath: path.resolve('media/families/epochs/epoch-08.onnx'), images: [path.resolve('media/families/images')], profile: presetProfile('[0,1]', 'manifest') });
  assert.deepEqual([trained.chosen.degenerate, trained.recommended], [false, null], 'the trained checkpoint passes at its own [0,1]');
});
