/**
 * Display labels of layer names (src/engine/layerLabel.ts): the names below are real torchvision ONNX exports, as
 * `infodiscard layers .cache/torchvision-onnx/<model>.onnx` lists them (resnet18, mobilenet_v3_small, shufflenet_v2,
 * vit_b_16, swin_t). The labels are short, keep the distinctive end, and stay distinct within a model.
 */
import './helpers/vscode-mock';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LAYER_LABEL_MAX, layerLabel, shortLayerLabels, tidyLayerName } from '../src/engine/layerLabel';
import { layerPickItems, resolveLayerPick, type LayerPickItem } from '../src/extension/layerPicker';

test('layer labels: ONNX export names lose the module repeats, the op that repeats its module and "_output_0"', () => {
  assert.equal(layerLabel('/layer1/layer1.1/relu_1/Relu_output_0'), 'layer1.1/relu_1');
  assert.equal(layerLabel('/layer1/layer1.0/Add_output_0'), 'layer1.0/Add');
  assert.equal(layerLabel('/relu/Relu_output_0'), 'relu');
  assert.equal(layerLabel('/conv1/Conv_output_0'), 'conv1');
  assert.equal(layerLabel('/maxpool/MaxPool_output_0'), 'maxpool');
  assert.equal(layerLabel('/features/features.3/Add_output_0'), 'features.3/Add');
  assert.equal(layerLabel('/features/features.0/features.0.2/Mul_output_0'), 'features.0.2/Mul');
  assert.equal(layerLabel('/stage2/stage2.0/branch1/branch1.4/Relu_output_0'), 'stage2.0/branch1.4/Relu');
  assert.equal(layerLabel('/encoder/Add_output_0'), 'encoder/Add');
  assert.equal(layerLabel('/Concat_output_0'), 'Concat');
  // Ops numbered apart from their module are kept: "ln_1/Add_1" is not "ln_1".
  assert.equal(tidyLayerName('/encoder/layers/encoder_layer_0/ln_1/Add_1_output_0'), 'encoder/layers/encoder_layer_0/ln_1/Add_1');
  assert.equal(tidyLayerName('/relu/Relu_1_output_0'), 'relu/Relu_1');
});

test('layer labels: long names keep their end (block index, module, op) after "…", within the limit', () => {
  assert.equal(layerLabel('/encoder/layers/encoder_layer_0/ln_1/Add_1_output_0'), '…/encoder_layer_0/ln_1/Add_1');
  assert.equal(layerLabel('/encoder/layers/encoder_layer_11/Add_1_output_0'), '…/layers/encoder_layer_11/Add_1');
  assert.equal(layerLabel('/features/features.1/block/block.1/scale_activation/HardSigmoid_output_0'), '…/scale_activation/HardSigmoid');
  // The first segment stays when it fits with the end.
  assert.equal(layerLabel('/encoder/layers/encoder_layer_0/ln_1/Add_1_output_0', 24), 'encoder/…/ln_1/Add_1');
  assert.equal(layerLabel('/a/bbbbbbbbbbbbbbbbbbbb/c/d', 12), 'a/…/c/d');
  // One long segment: cut in its middle, its end kept.
  const long = `conv_${'x'.repeat(60)}_end`;
  const label = layerLabel(long, 20);
  assert.equal(label.length, 20);
  assert.ok(label.startsWith('conv') && label.endsWith('x_end') && label.includes('…'), label);
  for (const name of ['/features/features.1/features.1.0/attn/Reshape_2_output_0', '/features/features.5/features.5.1/mlp/mlp.0/Add_output_0', 'x'.repeat(200)]) {
    assert.ok(layerLabel(name).length <= LAYER_LABEL_MAX, name);
  }
});

test('layer labels: Keras and short names unchanged; labels shown together never read alike', () => {
  for (const n of ['block1_conv1', 'conv2d_3', 'dense', 'model/block1_conv1/Relu']) assert.equal(layerLabel(n), n);
  assert.equal(layerLabel(''), '');
  assert.equal(layerLabel('/'), '/');
  // Two names with the same short end get their tidy forms, then their full names.
  const clash = ['/encoder/layers/encoder_layer_0/ln_1/Add_1_output_0', '/encoder/layers/encoder_layer_1/ln_1/Add_1_output_0', '/encoder/Add_output_0'];
  assert.equal(layerLabel(clash[0], 20), 'encoder/…/ln_1/Add_1');
  assert.equal(layerLabel(clash[1], 20), 'encoder/…/ln_1/Add_1');
  assert.deepEqual(shortLayerLabels(clash, 20), ['encoder/layers/encoder_layer_0/ln_1/Add_1', 'encoder/layers/encoder_layer_1/ln_1/Add_1', 'encoder/Add']);
  // "conv1" (an export's /conv1/Conv) and a layer really named "conv1": the export keeps its full name.
  assert.deepEqual(shortLayerLabels(['/conv1/Conv_output_0', 'conv1']), ['/conv1/Conv_output_0', 'conv1']);
  const resnet = ['/relu/Relu_output_0', '/layer1/layer1.0/relu_1/Relu_output_0', '/layer1/layer1.1/relu_1/Relu_output_0', '/layer2/layer2.0/relu_1/Relu_output_0', '/layer4/layer4.1/relu_1/Relu_output_0', '/avgpool/GlobalAveragePool_output_0'];
  assert.deepEqual(shortLayerLabels(resnet), ['relu', 'layer1.0/relu_1', 'layer1.1/relu_1', 'layer2.0/relu_1', 'layer4.1/relu_1', 'avgpool/GlobalAveragePool']);
});

test('the layer picker shows short labels, the full name as detail, and still returns the full names', () => {
  const layer = (name: string, recommended = false) => ({ name, kind: 'Relu', outputShape: [64, 56, 56], conv: false, recommended, ...(recommended ? { why: 'residual merge' } : {}), block: '/layer1/layer1.1/relu_1/Relu_output_0' });
  const listed = {
    modelPath: '/m/resnet18.onnx',
    format: 'onnx' as const,
    input: { height: 224, width: 224, channels: 3 },
    layers: [layer('/layer1/layer1.1/relu/Relu_output_0'), layer('/layer1/layer1.1/relu_1/Relu_output_0', true), layer('block1_conv1')],
  };
  const items = layerPickItems(listed, undefined);
  const row = (name: string) => items.find((i) => i.layer === name)!;
  assert.equal(row('/layer1/layer1.1/relu_1/Relu_output_0').label, 'layer1.1/relu_1');
  assert.equal(row('/layer1/layer1.1/relu_1/Relu_output_0').detail, '/layer1/layer1.1/relu_1/Relu_output_0 · recommended: residual merge');
  assert.equal(row('/layer1/layer1.1/relu/Relu_output_0').label, 'layer1.1/relu');
  assert.equal(row('/layer1/layer1.1/relu/Relu_output_0').detail, '/layer1/layer1.1/relu/Relu_output_0');
  assert.equal(row('block1_conv1').label, 'block1_conv1');
  assert.equal(row('block1_conv1').detail, undefined, 'a name shown whole needs no detail');
  assert.ok(items.some((i) => i.label === 'block ending at layer1.1/relu_1'));
  assert.match(items[0].description ?? '', /^layer1\.1\/relu_1$/);
  const picked = items.filter((i) => i.layer && i.picked) as LayerPickItem[];
  assert.deepEqual(resolveLayerPick(picked, listed, undefined), ['/layer1/layer1.1/relu_1/Relu_output_0']);
});
