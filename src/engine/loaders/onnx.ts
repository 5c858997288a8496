/**
 * ONNX models (.onnx), evaluated by our own interpreter on tfjs ops (./onnx/graph.ts) so input gradients flow
 * through every node. Every node output that depends on the image and is a float tensor can be probed; its kind
 * is the ONNX op type and its shape comes from a forward pass on a blank image. The engine feeds NHWC batches;
 * they are transposed to NCHW when the ONNX input is [N, C, H, W].
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../errors';
import type { InputLayout, LoadedModel, ModelLoader, ProbeLayer } from './types';
import { decodeModel, OnnxFormatError, OnnxGraph } from './onnx/graph';
import { OnnxVariantError } from './onnx/ops';
import { outputShapes, type ProbedOutput } from './outputShapes';
import { rescaleOnnxConvPair } from './rescale';
import { onnxFeatureHooks } from './onnx/feature';
import { detectFromOnnx } from '../preprocessing/detect';

export { OnnxGraph, decodeModel } from './onnx/graph';
export { SUPPORTED_OPS } from './onnx/ops';

type Layout = 'nchw' | 'nhwc' | 'flat';

function inputLayout(dims: (number | null)[], file: string): { layout: Layout; input: InputLayout } {
  const shape = dims.slice(1);
  const show = `[${dims.map((d) => d ?? '?').join(', ')}]`;
  if (shape.length === 3) {
    const [a, b, c] = shape;
    const small = (d: number | null) => d !== null && d <= 4;
    // [N, C, H, W] unless it only reads as [N, H, W, C] (tf2onnx exports of Keras models).
    const nhwc = small(c) && !small(a);
    const [h, w, ch] = nhwc ? [a, b, c] : [b, c, a];
    if (ch === null) throw new UserError(`the ONNX input ${show} has an unknown channel count; export it with a fixed channel dimension`, file);
    return { layout: nhwc ? 'nhwc' : 'nchw', input: { height: h, width: w, channels: ch, flat: false, shape } };
  }
  if (shape.length === 1 && shape[0] !== null) {
    const n = shape[0];
    for (const c of [1, 3]) {
      const side = Math.round(Math.sqrt(n / c));
      if (side * side * c === n) return { layout: 'flat', input: { height: side, width: side, channels: c, flat: true, shape } };
    }
  }
  throw new UserError(`the ONNX input shape ${show} is not an image ([N, C, H, W], [N, H, W, C] or a flat square image)`, file);
}

function oneLine(e: unknown): string {
  return ((e as Error)?.message ?? String(e)).split('\n')[0];
}

export const onnxLoader: ModelLoader = {
  format: 'onnx',
  accepts: (file) => file.toLowerCase().endsWith('.onnx'),
  async load(file): Promise<LoadedModel> {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new UserError(`cannot read the file (${oneLine(e)})`, file);
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    let graph: OnnxGraph;
    try {
      graph = new OnnxGraph(decodeModel(bytes));
    } catch (e) {
      if (e instanceof OnnxFormatError) throw new UserError(`${e.message}; give a .onnx file saved by torch.onnx.export, tf2onnx or onnx.save`, file);
      throw new UserError(`cannot read the ONNX graph (${oneLine(e)}); re-export the model`, file);
    }
    const missing = graph.unsupportedOps();
    if (missing.length > 0) {
      throw new UserError(
        `uses ONNX ops not supported by infodiscard: ${missing.join(', ')}; re-export the model without them (for example a different opset or without post-processing)`,
        file,
      );
    }
    if (graph.inputs.length !== 1) {
      throw new UserError(`the model has ${graph.inputs.length} inputs (${graph.inputs.map((i) => i.name).join(', ')}); only single-input image models are supported`, file);
    }
    const inputName = graph.inputs[0].name;
    const { layout, input } = inputLayout(graph.inputs[0].dims, file);
    try {
      graph.loadConstants();
    } catch (e) {
      graph.dispose();
      throw new UserError(`cannot decode the weights (${oneLine(e)})`, file);
    }

    const feed = (x: tf.Tensor4D): tf.Tensor =>
      layout === 'nchw' ? tf.transpose(x, [0, 3, 1, 2]) : layout === 'flat' ? tf.reshape(x, [x.shape[0], -1]) : x;
    const reached = graph.dependents([inputName]);
    const candidates = graph.nodes.flatMap((n) =>
      n.outputs.filter((o) => o && reached.has(o) && n.op !== 'Constant').map((o) => ({ name: o, op: n.op, inputs: n.inputs.filter((i) => i && reached.has(i)) })),
    );
    const run = (h: number, w: number) =>
      tf.tidy(() => {
        const zeros = tf.zeros([1, h, w, input.channels]) as tf.Tensor4D;
        return graph.run({ [inputName]: feed(zeros) }, candidates.map((c) => c.name)).map((t) => ({ shape: t.shape, dtype: t.dtype }));
      });
    let outs: ProbedOutput[];
    try {
      outs = outputShapes(input, run);
    } catch (e) {
      graph.dispose();
      if (e instanceof OnnxVariantError) throw new UserError(`uses an ONNX op variant not supported by infodiscard (${e.message}); re-export the model without it`, file);
      throw new UserError(`cannot run the ONNX graph (${oneLine(e)})`, file);
    }
    const layers: ProbeLayer[] = candidates
      .map((c, i) => ({
        name: c.name,
        kind: c.op,
        outputShape: outs[i].shape,
        inputs: c.inputs,
      }))
      .filter((_, i) => outs[i].dtype === 'float32');
    const known = new Set(layers.map((l) => l.name));
    for (const l of layers) l.inputs = l.inputs!.filter((i) => known.has(i));
    const stemNode = graph.nodes.find((n) => n.op === 'Conv' && n.inputs[0] === inputName);
    const stemWeight = stemNode ? (graph.model.graph?.initializer ?? []).find((t) => t.name === stemNode.inputs[1]) : undefined;
    const hint = detectFromOnnx({
      metadata: (graph.model.metadataProps ?? []).map((m) => ({ key: m.key ?? '', value: m.value ?? '' })),
      inputName,
      inputDims: graph.inputs[0].dims,
      layout,
      stem: stemNode && stemWeight ? { weight: (stemWeight.dims ?? []).map(Number), strides: stemNode.attrs.ints('strides') ?? [1, 1] } : null,
    });

    return {
      path: file,
      format: 'onnx',
      sha256,
      input,
      layers,
      ...(hint ? { preprocessingHint: hint } : {}),
      probe(layerName) {
        if (!known.has(layerName)) throw new UserError(`no probe-able node output named "${layerName}"`, file);
        return (x: tf.Tensor4D) => graph.run({ [inputName]: feed(x) }, [layerName])[0];
      },
      rescaleConvPair: (first, factor) => rescaleOnnxConvPair(graph, file, first, factor),
      ...onnxFeatureHooks(graph, inputName, feed, layout === 'nhwc' ? 'nhwc' : 'nchw'),
      dispose() {
        graph.dispose();
      },
    };
  },
};
