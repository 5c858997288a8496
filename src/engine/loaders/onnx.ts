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
import { createOnnxNativeProbe } from '../native/ortProbe';
import { OnnxVariantError } from './onnx/ops';
import { outputShapes, type ProbedOutput } from './outputShapes';
import { rescaleOnnxConvPair } from './rescale';
import { onnxFeatureHooks, type ImageRunner } from './onnx/feature';
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
      const list = missing.map((m) => `${m.op} (node "${m.node}"${m.count > 1 ? ` and ${m.count - 1} more` : ''})`).join(', ');
      const custom = missing.some((m) => m.op.includes(':'));
      throw new UserError(
        `uses ONNX ops that infodiscard does not support: ${list}${custom ? '; ops of a custom domain belong to the runtime that defined them' : ''}`,
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
    /** Runs the graph on an NHWC image batch (given channels-last to an NCHW graph: no transpose at the input). */
    const runImage: ImageRunner = (x, wanted, extra = {}) =>
      layout === 'nchw' ? graph.run(extra, wanted, { [inputName]: x }) : graph.run({ ...extra, [inputName]: feed(x) }, wanted);
    const blank = (n: number, h: number, w: number) => tf.tidy(() => feed(tf.zeros([n, h, w, input.channels]) as tf.Tensor4D));
    try {
      // Shape arithmetic that depends on neither the batch size nor (where the model takes any) the image size.
      const [h, w] = [input.height ?? 224, input.width ?? 224];
      const [h2, w2] = [input.height ?? 256, input.width ?? 256];
      graph.foldConstants(() => [{ [inputName]: blank(1, h, w) }, { [inputName]: blank(2, h2, w2) }]);
    } catch (e) {
      graph.dispose();
      throw new UserError(`cannot fold the ONNX graph's constants (${oneLine(e)})`, file);
    }
    const reached = graph.computedDependents([inputName]);
    const candidates = graph.nodes.flatMap((n) =>
      n.outputs.filter((o) => o && reached.has(o) && n.op !== 'Constant').map((o) => ({ name: o, op: n.op, inputs: n.inputs.filter((i) => i && reached.has(i)) })),
    );
    // Values whose first axis is not the image batch (Swin's windows, attention heads folded into the batch) are
    // not per-image features: not listed.
    const perImage: boolean[] = [];
    const run = (batch: number) => (h: number, w: number) =>
      tf.tidy(() => {
        const zeros = tf.zeros([batch, h, w, input.channels]) as tf.Tensor4D;
        const values = graph.shapes({ [inputName]: feed(zeros) }, candidates.map((c) => c.name));
        values.forEach((t, i) => (perImage[i] = t.shape.length > 0 && t.shape[0] === batch));
        return values;
      });
    let outs: ProbedOutput[];
    // PyTorch's exporter writes a fixed-batch model's reshapes with a literal batch of 1 (ShuffleNet's channel
    // shuffle, Swin's windows): such a model is run one image (one noise sample) at a time. Found where a Reshape's
    // constant shape starts with 1, or where the folding pass's batch of 2 did not run (no full second forward
    // pass at load: ViT-B/16's intermediates already fill much of the wasm heap at batch 1).
    const fixedBatch = graph.inputs[0].dims[0] === 1;
    const perSample =
      fixedBatch &&
      ((graph.secondFeedFailed && input.height !== null && input.width !== null) ||
      graph.nodes.some((n) => n.op === 'Reshape' && reached.has(n.inputs[0]) && graph.isConstant(n.inputs[1]) && graph.constant(n.inputs[1])!.size > 1 && graph.constant(n.inputs[1])!.dataSync()[0] === 1));
    try {
      outs = outputShapes(input, run(1));
    } catch (e) {
      graph.dispose();
      if (e instanceof OnnxVariantError) throw new UserError(`uses an ONNX op variant that infodiscard does not support: ${e.message}`, file);
      throw new UserError(`cannot run the ONNX graph (${oneLine(e)})`, file);
    }
    /** f on the batch, or on each of its images when the graph only takes one at a time. */
    const batched = <T extends tf.Tensor>(f: (...xs: T[]) => tf.Tensor) => (...xs: T[]): tf.Tensor => {
      const n = xs[0].shape[0];
      if (n === 1) return f(...xs);
      if (!perSample) return f(...xs);
      const parts = xs.map((x) => tf.split(x, n, 0) as T[]);
      return tf.concat(parts[0].map((_, i) => f(...parts.map((p) => p[i]))), 0);
    };
    const layers: ProbeLayer[] = candidates
      .map((c, i) => ({
        name: c.name,
        kind: c.op,
        outputShape: outs[i].shape,
        inputs: c.inputs,
      }))
      .filter((_, i) => outs[i].dtype === 'float32' && perImage[i]);
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
    const hooks = onnxFeatureHooks(graph, inputName, runImage, layout === 'nhwc' ? 'nhwc' : 'nchw');
    let grids: Set<string> | undefined;
    let weightsChanged = false;
    /** The spatial grids (h x w) of the graph's convolution outputs. */
    const convGrids = (): Set<string> => {
      grids ??= new Set(
        layers
          .filter((l) => l.kind === 'Conv' && l.outputShape.length === 3)
          .map((l) => (hooks.featureLayout?.(l.name) === 'nhwc' ? l.outputShape.slice(0, 2) : l.outputShape.slice(1)).join('x')),
      );
      return grids;
    };

    return {
      path: file,
      format: 'onnx',
      sha256,
      input,
      layers,
      ...(hint ? { preprocessingHint: hint } : {}),
      probe(layerName) {
        if (!known.has(layerName)) throw new UserError(`no probe-able node output named "${layerName}"`, file);
        return batched((x: tf.Tensor4D) => runImage(x, [layerName])[0]);
      },
      async nativeProbe(layerName, image, threads, first) {
        // The runtime reads the file's weights: after an in-memory rescale (the coherency check) they are not the model's.
        if (weightsChanged) return 'its weights were changed in memory (coherency check)';
        if (layout === 'flat') return 'the model takes a flat vector';
        if (input.height === null || input.width === null) return 'the model takes images of any size';
        const shapes = new Map(layers.filter((l) => l.outputShape.every((d) => d !== null)).map((l) => [l.name, [1, ...(l.outputShape as number[])]]));
        return createOnnxNativeProbe({ model: graph.model, inputName, inputLayout: layout, layerName, image, height: input.height, width: input.width, channels: input.channels, shapes, threads, perSample, ...(first ? { first } : {}),
          constant: (name) => {
            const t = graph.isConstant(name) ? graph.constant(name) : undefined;
            if (t) return { dims: t.shape, values: t.dataSync() };
            // A graph that takes one image at a time folded no shape arithmetic (its second feed failed); its passes
            // run at batch 1 and this size, where such a value (the builder asks only for ones the image does not
            // reach) is what one run gives.
            if (!perSample) return null;
            return tf.tidy(() => {
              const v = runImage(tf.zeros([1, input.height!, input.width!, input.channels]) as tf.Tensor4D, [name])[0];
              return { dims: v.shape, values: Array.from(v.dataSync() as ArrayLike<number>) };
            });
          },
        });
      },
      rescaleConvPair: (first, factor) => {
        const pair = rescaleOnnxConvPair(graph, file, first, factor);
        weightsChanged = true;
        return pair;
      },
      tokenGrid(layerName) {
        // ViT's layout: a class token then the patch grid, (H/p) x (W/p) tokens in row order.
        const shape = layers.find((l) => l.name === layerName)?.outputShape;
        if (!shape || shape.length !== 2 || shape[0] === null || input.height === null || input.width === null) return null;
        for (const skip of [1, 0]) {
          const n = shape[0] - skip;
          const aspect = input.width / input.height;
          const gh = Math.round(Math.sqrt(n / aspect));
          const gw = gh > 0 ? n / gh : 0;
          const fits = gh > 1 && Number.isInteger(gw) && input.height % gh === 0 && input.width % gw === 0 && input.height / gh === input.width / gw;
          // Where the graph has convolutions (the patch embedding), the grid must be one of their output grids: the
          // patch embedding's [C, h*w] before its transpose is channels by positions, not tokens (a 64-channel
          // embedding of 4x4 patches would otherwise read as 64 tokens on an 8x8 grid).
          if (fits && (convGrids().size === 0 || convGrids().has(`${gh}x${gw}`))) return { skip, height: gh, width: gw };
        }
        return null;
      },
      ...hooks,
      runWithFeature: (layerName, options) => {
        const f = hooks.runWithFeature!(layerName, options);
        return batched<tf.Tensor>((x, feature) => f(x as tf.Tensor4D, feature)) as (x: tf.Tensor4D, feature: tf.Tensor) => tf.Tensor;
      },
      dispose() {
        graph.dispose();
      },
    };
  },
};
