/**
 * A token feature [tokens, dim] reads as a token sequence, not an image-shaped map (issue 14): the shape text of the
 * CLI's layer listing, the layer picker and the panel's table.
 */
import './helpers/vscode-mock';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { featureShapeText, isTokenShape } from '../src/engine/featureShape';
import type { Report } from '../src/engine/report';
import { layerRows } from '../webview/report/table';
import { layerPickItems } from '../src/extension/layerPicker';
import { sampleReport } from './fixtures/sample-report';

test('featureShapeText: tokens × dim for a token sequence, with the declared patch grid; maps and vectors as before', () => {
  assert.equal(featureShapeText([197, 768]), '197 tokens × 768');
  assert.equal(featureShapeText([197, 768], { skip: 1, height: 14, width: 14 }), '197 tokens × 768 (1 class token + 14×14 patches)');
  assert.equal(featureShapeText([196, 768], { skip: 0, height: 14, width: 14 }), '196 tokens × 768 (14×14 patches)');
  assert.equal(featureShapeText([null, 64]), '? tokens × 64');
  // Image-shaped maps and vectors keep the plain list; a grid is ignored where the feature is not a sequence.
  assert.equal(featureShapeText([8, 8, 4]), '[8, 8, 4]');
  assert.equal(featureShapeText([768, 14, 14], { skip: 0, height: 14, width: 14 }), '[768, 14, 14]');
  assert.equal(featureShapeText([10]), '[10]');
  assert.equal(featureShapeText([null, 8, 3]), '[?, 8, 3]');
  assert.ok(isTokenShape([17, 64]) && !isTokenShape([4, 4, 64]) && !isTokenShape([64]));
});

test("the panel's table shows a transformer block's output as tokens × dim, a conv map as [h, w, c]", () => {
  const base = sampleReport() as Report;
  const report: Report = {
    ...base,
    layers: [
      { ...base.layers[0], name: 'patch_conv', outputShape: [14, 14, 768] },
      { ...base.layers[0], name: 'encoder_layer_0/Add_1', kind: 'Add', outputShape: [197, 768] },
    ],
    skippedLayers: [],
  };
  const rows = layerRows(report);
  const shape = (name: string) => rows.find((r) => r.name === name)?.shape;
  assert.equal(shape('patch_conv'), '[14, 14, 768]');
  assert.equal(shape('encoder_layer_0/Add_1'), '197 tokens × 768');
});

test("the layer picker describes a ViT block output as tokens × dim with the worker's patch grid", () => {
  const items = layerPickItems(
    {
      modelPath: '/m/vit.onnx',
      format: 'onnx',
      input: { height: 224, width: 224, channels: 3 },
      layers: [
        { name: 'conv_proj', kind: 'Conv', outputShape: [768, 14, 14], conv: true, recommended: false, block: 'block0' },
        { name: 'block0', kind: 'Add', outputShape: [197, 768], conv: false, recommended: true, why: 'encoder block 1 output', block: 'block0', tokenGrid: { skip: 1, height: 14, width: 14 } },
        { name: 'cls', kind: 'Gather', outputShape: [768], conv: false, recommended: true, why: 'class token feature', block: 'cls' },
      ],
    },
    undefined,
  );
  const description = (name: string) => items.find((i) => i.layer === name)?.description;
  assert.equal(description('block0'), 'Add 197 tokens × 768 (1 class token + 14×14 patches)');
  assert.equal(description('conv_proj'), 'Conv [768, 14, 14]');
  assert.equal(description('cls'), 'Gather [768]');
});
