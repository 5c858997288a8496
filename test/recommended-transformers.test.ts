/**
 * The recommended layer set of transformers (issue 14): each encoder block's output (the second residual add of a
 * pre-norm block), the embedding that enters the first block, the final norm, the class token or pooled feature and
 * the head; not the Adds/MatMuls/LayerNorm internals of a block. On a 3-block ViT exported here with Debian's torch
 * (opset 13: LayerNorm written out as ReduceMean/Sub/Pow/...; opset 17: LayerNormalization nodes), on the real
 * torchvision ViT-B/16 and Swin-T exports of test/torchvision-onnx.test.ts's cache (skipped with the command that
 * makes them when they are not there), and on Keras-style, TensorFlow-graph-style and CNN layer lists (pure). The
 * torch parts skip with the reason when torch is absent.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { selectBackend } from '../src/engine/backend';
import { onnxLoader } from '../src/engine/loaders/onnx';
import type { ProbeLayer } from '../src/engine/loaders/types';
import { recommendedFor, recommendLayers } from '../src/engine/recommendedLayers';
import { tempDir } from './helpers/fixtures';
import { cachedExport, PYTHON, torchAvailable, TORCHVISION_DIR, TORCHVISION_SCRIPT } from './helpers/torchvision';

const ROOT = path.join(__dirname, '..');
const CACHE = TORCHVISION_DIR;
const dir = tempDir('infodiscard-rec-vit-');
const noTorch = torchAvailable();

before(() => selectBackend('wasm'));

async function recommendedOf(file: string) {
  const model = await onnxLoader.load(file, undefined);
  try {
    const r = recommendedFor(model);
    return { r, layers: model.layers.length, kinds: new Map(model.layers.map((l) => [l.name, l.kind])) };
  } finally {
    model.dispose();
  }
}

/** A 3-block ViT (32x32, 8x8 patches, width 32) exported at the given opset. */
function exportSmallVit(opset: number): string {
  const out = path.join(dir, `vit3-opset${opset}.onnx`);
  const code = [
    'import sys, torch',
    'from torchvision.models.vision_transformer import VisionTransformer',
    'torch.manual_seed(0)',
    'm = VisionTransformer(image_size=32, patch_size=8, num_layers=3, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5).eval()',
    // With gradients enabled the exporter traces MultiheadAttention's plain ops (see scripts/test-data/torchvision-onnx.py).
    `torch.onnx.export(m, torch.randn(1, 3, 32, 32), sys.argv[1], opset_version=${opset}, input_names=['input'], output_names=['logits'])`,
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', code, out], { encoding: 'utf8' });
  assert.equal(r.status, 0, `torch export failed: ${r.stderr.split('\n').slice(-3).join(' ')}`);
  return out;
}

const VIT_BLOCKS = (n: number) => Array.from({ length: n }, (_, i) => `/encoder/layers/encoder_layer_${i}/Add_1_output_0`);

for (const opset of [13, 17]) {
  test(`recommended layers: a 3-block ViT exported here (opset ${opset}): embedding, each block's output, final norm, class token, head`, { skip: noTorch ?? false, timeout: 120_000 }, async () => {
    const { r, layers, kinds } = await recommendedOf(exportSmallVit(opset));
    assert.ok(layers > 30, `${layers} layers listed`);
    assert.deepEqual(r.names.slice(1, 4), VIT_BLOCKS(3), `block outputs: ${r.names.join(', ')}`);
    assert.equal(r.names.length, 7, `7 of ${layers}: ${r.names.join(', ')}`);
    assert.equal(r.reasons.get(r.names[0]), 'embedding (input of the first block)');
    assert.deepEqual(VIT_BLOCKS(3).map((n) => r.reasons.get(n)), ['encoder block 1 output', 'encoder block 2 output', 'encoder block 3 output']);
    assert.equal(r.reasons.get(r.names[4]), 'final norm');
    assert.match(r.names[4], /^\/encoder\/ln\//);
    assert.equal(kinds.get(r.names[5]), 'Gather');
    assert.equal(r.reasons.get(r.names[5]), 'class token feature');
    assert.deepEqual([r.names[6], r.reasons.get('logits')], ['logits', 'output']);
    // Nothing from inside a block: no LayerNorm internals, no attention or MLP Add/MatMul.
    assert.ok(!r.names.some((n) => /ln_[12]|mlp|self_attention|\/Add_output_0$/.test(n) && !n.startsWith('/encoder/Add')), r.names.join(', '));
    // Every listed layer is in exactly one block of the picker, blocks end at recommended layers.
    assert.equal(r.blocks.flatMap((b) => b.layers).length, layers);
    assert.deepEqual(r.blocks.map((b) => b.name), r.names);
  });
}

test('infodiscard layers on a ViT: block outputs read "17 tokens × 32 (1 class token + 4×4 patches)", marked recommended', { skip: noTorch ?? false, timeout: 120_000 }, () => {
  const file = path.join(dir, 'vit3-opset13.onnx');
  if (!existsSync(file)) exportSmallVit(13);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'main.ts'), 'layers', file, '--backend', 'wasm'], { encoding: 'utf8', cwd: ROOT });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^\* \/encoder\/layers\/encoder_layer_0\/Add_1_output_0\s+Add\s+17 tokens × 32 \(1 class token \+ 4×4 patches\)\s+\* recommended: encoder block 1 output$/m);
  assert.match(r.stdout, /^\* \/Gather_output_0\s+Gather\s+\[32\]\s+\* recommended: class token feature$/m);
  assert.doesNotMatch(r.stdout, /\[17, 32\]/, 'no token sequence listed as a plain shape');
  assert.match(r.stdout, /\* 7 of \d+ layers recommended/);
});

/**
 * The export in the torchvision cache, or null. Not exported here: ViT-B/16 is 346 MB and takes seconds to load, so
 * these two run where test/torchvision-onnx.test.ts (INFODISCARD_TORCHVISION=vit_b_16,swin_t or all) or the script
 * has made them, and skip with the command otherwise.
 */
const cached = (name: string) => cachedExport(name);
const notCached = (name: string) =>
  `${name} is not exported in ${CACHE}: ${noTorch ? `${noTorch}; then ` : ''}run ${PYTHON} ${path.relative(ROOT, TORCHVISION_SCRIPT)} --out ${CACHE} ${name}`;

test('recommended layers: torchvision ViT-B/16 (376 layers): the 12 encoder block outputs and the head', { timeout: 300_000 }, async (t) => {
  const file = cached('vit_b_16');
  if (!file) return t.skip(notCached('vit_b_16'));
  const { r, layers } = await recommendedOf(file);
  assert.deepEqual(r.names.slice(1, 13), VIT_BLOCKS(12));
  assert.deepEqual(r.names.length, 16, r.names.join(', '));
  assert.deepEqual([...r.reasons.values()].slice(-3), ['final norm', 'class token feature', 'output']);
  t.diagnostic(`vit_b_16: ${r.names.length} of ${layers} layers recommended`);
});

test('recommended layers: torchvision Swin-T: every block output of the four stages (2, 2, 6, 2), final norm, pool, head', { timeout: 300_000 }, async (t) => {
  const file = cached('swin_t');
  if (!file) return t.skip(notCached('swin_t'));
  const { r, layers } = await recommendedOf(file);
  const blocks = [
    [1, 2],
    [3, 2],
    [5, 6],
    [7, 2],
  ].flatMap(([stage, n]) => Array.from({ length: n }, (_, j) => `/features/features.${stage}/features.${stage}.${j}/Add_1_output_0`));
  assert.deepEqual(r.names.slice(1, 13), blocks);
  assert.equal(r.reasons.get(blocks[1]), 'encoder block 2 output, end of stage 1');
  assert.equal(r.reasons.get(blocks[11]), 'encoder block 12 output, end of stage 4');
  assert.deepEqual(r.names.slice(13), ['/norm/Add_1_output_0', '/avgpool/GlobalAveragePool_output_0', 'logits']);
  assert.equal(r.reasons.get('/norm/Add_1_output_0'), 'final norm');
  // No patch-merging slice or shifted-window roll is a "stage end".
  assert.ok(![...r.reasons.values()].some((why) => /stage$|concatenation|residual merge/.test(why)), [...r.reasons.entries()].join('; '));
  t.diagnostic(`swin_t: ${r.names.length} of ${layers} layers recommended`);
});

const L = (name: string, kind: string, outputShape: number[], inputs: string[]): ProbeLayer => ({ name, kind, outputShape, inputs });

test('recommended layers: a Keras MultiHeadAttention ViT (LayerNormalization, MultiHeadAttention, Add, Dense) by the same rule', () => {
  const layers: ProbeLayer[] = [
    L('patches', 'Conv2D', [4, 4, 32], []),
    L('tokens', 'Reshape', [16, 32], ['patches']),
    L('pos', 'Add', [16, 32], ['tokens']),
  ];
  let x = 'pos';
  for (let b = 0; b < 2; b++) {
    layers.push(
      L(`ln1_${b}`, 'LayerNormalization', [16, 32], [x]),
      L(`mha_${b}`, 'MultiHeadAttention', [16, 32], [`ln1_${b}`, `ln1_${b}`]),
      L(`add1_${b}`, 'Add', [16, 32], [x, `mha_${b}`]),
      L(`ln2_${b}`, 'LayerNormalization', [16, 32], [`add1_${b}`]),
      L(`fc1_${b}`, 'Dense', [16, 64], [`ln2_${b}`]),
      L(`fc2_${b}`, 'Dense', [16, 32], [`fc1_${b}`]),
      L(`add2_${b}`, 'Add', [16, 32], [`add1_${b}`, `fc2_${b}`]),
    );
    x = `add2_${b}`;
  }
  layers.push(L('ln', 'LayerNormalization', [16, 32], [x]), L('gap', 'GlobalAveragePooling1D', [32], ['ln']), L('head', 'Dense', [10], ['gap']));
  const r = recommendLayers(layers);
  assert.deepEqual(r.names, ['pos', 'add2_0', 'add2_1', 'ln', 'gap', 'head']);
  assert.deepEqual([...r.reasons.values()], ['embedding (input of the first block)', 'encoder block 1 output', 'encoder block 2 output', 'final norm', 'global-pool feature', 'output']);
});

test('recommended layers: CNN residual merges are untouched (one add per block, even with a LayerNorm as in ConvNeXt)', () => {
  const layers: ProbeLayer[] = [L('stem', 'Conv', [8, 8, 16], [])];
  let x = 'stem';
  for (let b = 0; b < 3; b++) {
    layers.push(
      L(`dw_${b}`, 'Conv', [8, 8, 16], [x]),
      L(`ln_${b}`, 'LayerNormalization', [8, 8, 16], [`dw_${b}`]),
      L(`pw_${b}`, 'MatMul', [8, 8, 16], [`ln_${b}`]),
      L(`add_${b}`, 'Add', [8, 8, 16], [x, `pw_${b}`]),
    );
    x = `add_${b}`;
  }
  layers.push(L('gap', 'GlobalAveragePool', [16, 1, 1], [x]), L('fc', 'Gemm', [10], ['gap']));
  const r = recommendLayers(layers);
  assert.deepEqual(r.names, ['add_0', 'add_1', 'add_2', 'gap', 'fc']);
  assert.equal(r.reasons.get('add_1'), 'residual merge');
});

test('recommended layers: a TensorFlow graph ViT (LayerNorm as Mean / SquaredDifference / Rsqrt ops) pairs its residual adds the same way', () => {
  const layers: ProbeLayer[] = [L('embed', 'AddV2', [16, 32], [])];
  let x = 'embed';
  const norm = (p: string, input: string): string => {
    layers.push(
      L(`${p}/mean`, 'Mean', [16, 1], [input]),
      L(`${p}/sqdiff`, 'SquaredDifference', [16, 32], [input, `${p}/mean`]),
      L(`${p}/var`, 'Mean', [16, 1], [`${p}/sqdiff`]),
      L(`${p}/eps`, 'AddV2', [16, 1], [`${p}/var`]),
      L(`${p}/rsqrt`, 'Rsqrt', [16, 1], [`${p}/eps`]),
      L(`${p}/sub`, 'Sub', [16, 32], [input, `${p}/mean`]),
      L(`${p}/out`, 'Mul', [16, 32], [`${p}/sub`, `${p}/rsqrt`]),
    );
    return `${p}/out`;
  };
  for (let b = 0; b < 2; b++) {
    const n1 = norm(`b${b}/ln1`, x);
    layers.push(L(`b${b}/attn`, 'BatchMatMulV2', [16, 32], [n1]), L(`b${b}/add1`, 'AddV2', [16, 32], [x, `b${b}/attn`]));
    const n2 = norm(`b${b}/ln2`, `b${b}/add1`);
    layers.push(L(`b${b}/fc1`, 'MatMul', [16, 64], [n2]), L(`b${b}/gelu`, 'Relu', [16, 64], [`b${b}/fc1`]), L(`b${b}/fc2`, 'MatMul', [16, 32], [`b${b}/gelu`]));
    layers.push(L(`b${b}/add2`, 'AddV2', [16, 32], [`b${b}/add1`, `b${b}/fc2`]));
    x = `b${b}/add2`;
  }
  layers.push(L('cls', 'StridedSlice', [32], [x]), L('logits', 'MatMul', [10], ['cls']));
  const r = recommendLayers(layers);
  assert.deepEqual(r.names, ['embed', 'b0/add2', 'b1/add2', 'cls', 'logits'], [...r.reasons.entries()].join('; '));
});

test('recommended layers: a hybrid (CNN stages, then transformer blocks) keeps the CNN stage ends before the embedding', () => {
  const layers: ProbeLayer[] = [
    L('stem', 'Conv', [32, 32, 8], []),
    L('stage1', 'Relu', [32, 32, 8], ['stem']),
    L('down', 'Conv', [16, 16, 16], ['stage1']),
    L('stage2', 'Relu', [16, 16, 16], ['down']),
    L('patch', 'Conv', [4, 4, 32], ['stage2']),
    L('tokens', 'Reshape', [16, 32], ['patch']),
    L('pos', 'Add', [16, 32], ['tokens']),
  ];
  let x = 'pos';
  for (let b = 0; b < 2; b++) {
    layers.push(
      L(`ln1_${b}`, 'LayerNormalization', [16, 32], [x]),
      L(`mha_${b}`, 'MultiHeadAttention', [16, 32], [`ln1_${b}`]),
      L(`add1_${b}`, 'Add', [16, 32], [x, `mha_${b}`]),
      L(`ln2_${b}`, 'LayerNormalization', [16, 32], [`add1_${b}`]),
      L(`mlp_${b}`, 'Dense', [16, 32], [`ln2_${b}`]),
      L(`add2_${b}`, 'Add', [16, 32], [`add1_${b}`, `mlp_${b}`]),
    );
    x = `add2_${b}`;
  }
  layers.push(L('ln', 'LayerNormalization', [16, 32], [x]), L('gap', 'GlobalAveragePooling1D', [32], ['ln']), L('head', 'Dense', [10], ['gap']));
  const r = recommendLayers(layers);
  assert.deepEqual(r.names, ['stage1', 'stage2', 'pos', 'add2_0', 'add2_1', 'ln', 'gap', 'head'], [...r.reasons.entries()].join('; '));
  assert.equal(r.reasons.get('stage2'), 'end of the 16x16 stage');
});
