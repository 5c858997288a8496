/**
 * The baseline-map hooks of ONNX models (LoadedModel.runWithFeature, camWeights, featureLayout) on our
 * interpreter: OnnxGraph.run takes any value name as a feed and never recomputes (or overwrites) a fed value,
 * so feeding the image and the layer's value runs the rest of the graph with that value replaced, while paths
 * that bypass it (residual skips) still start from the image.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FeatureLayout, LoadedModel, RunWithFeatureOptions } from '../types';
import type { OnnxGraph } from './graph';

/** Runs the graph on an NHWC image batch for the wanted values, with other values fed as given (`extra`). */
export type ImageRunner = (x: tf.Tensor4D, wanted: string[], extra?: Record<string, tf.Tensor>) => tf.Tensor[];

/** Ops whose rank-4 inputs and outputs are channels-first by the ONNX spec. */
const CHANNELS_FIRST = new Set([
  'Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool',
  'BatchNormalization', 'InstanceNormalization', 'LRN', 'MaxUnpool', 'DepthToSpace', 'SpaceToDepth', 'MaxRoiPool', 'RoiAlign',
]);
/** Identities at inference time. */
const PASS = new Set(['Identity', 'Dropout']);

/**
 * The axis order of every value, propagated from the input: channels-first ops give NCHW, a 4-D Transpose with
 * perm [0,2,3,1] / [0,3,1,2] gives NHWC / NCHW, anything else inherits from its first input that has an order.
 * Only meaningful for rank-4 values (tf2onnx exports of Keras models start NHWC and transpose to NCHW).
 */
function valueLayouts(graph: OnnxGraph, inputName: string, inputLayout: FeatureLayout): Map<string, FeatureLayout> {
  const layout = new Map<string, FeatureLayout>([[inputName, inputLayout]]);
  for (const n of graph.nodes) {
    let out: FeatureLayout | undefined;
    if (n.op === 'Transpose') {
      const perm = n.attrs.ints('perm')?.join(',');
      out = perm === '0,2,3,1' ? 'nhwc' : perm === '0,3,1,2' ? 'nchw' : layout.get(n.inputs[0]);
    } else if (CHANNELS_FIRST.has(n.op)) {
      out = 'nchw';
    } else {
      out = n.inputs.map((i) => layout.get(i)).find((l) => l !== undefined);
    }
    if (out) for (const o of n.outputs) if (o) layout.set(o, out);
  }
  return layout;
}

export function onnxFeatureHooks(
  graph: OnnxGraph,
  inputName: string,
  runImage: ImageRunner,
  inputLayout: FeatureLayout,
): Pick<LoadedModel, 'runWithFeature' | 'camWeights' | 'featureLayout' | 'logitsOf'> {
  const layouts = valueLayouts(graph, inputName, inputLayout);
  const consumers = new Map<string, OnnxGraph['nodes']>();
  for (const n of graph.nodes) for (const i of new Set(n.inputs)) if (i) consumers.set(i, [...(consumers.get(i) ?? []), n]);
  const single = (value: string) => {
    const c = consumers.get(value) ?? [];
    return c.length === 1 && !graph.outputs.includes(value) ? c[0] : null;
  };
  const output = graph.outputs[0];

  // The final softmax, if any: Softmax -> (Identity | Dropout)* -> output; `logits` is the Softmax input.
  const tail = new Set<string>();
  let logits: string | null = null;
  for (let v = output; ; ) {
    const n = graph.nodeOf(v);
    if (!n) break;
    tail.add(v);
    if (n.op === 'Softmax' && !n.domain) {
      logits = n.inputs[0];
      break;
    }
    if (!PASS.has(n.op)) break;
    v = n.inputs[0];
  }

  const constantValues = (name: string | undefined): number[] | undefined => {
    const t = name ? graph.constant(name) : undefined;
    return t ? [...t.dataSync()] : undefined;
  };

  return {
    featureLayout: (layerName) => layouts.get(layerName) ?? 'nchw',

    /** The Softmax node's input, for the softmax's output or an identity after it that gives the output. */
    logitsOf(layerName: string) {
      if (!logits || !tail.has(layerName)) return null;
      const target = logits;
      return {
        probe: (x: tf.Tensor4D) => runImage(x, [target])[0],
        note: `the scores before the softmax (value "${target}")`,
      };
    },

    runWithFeature(layerName: string, options: RunWithFeatureOptions = {}) {
      if (!graph.nodeOf(layerName)) throw new Error(`no node output named "${layerName}" in the ONNX graph`);
      const target = options.preSoftmax && logits && !tail.has(layerName) ? logits : output;
      return (x: tf.Tensor4D, feature: tf.Tensor) => runImage(x, [target], { [layerName]: feature })[0];
    },

    /**
     * GlobalAveragePool (or ReduceMean over the spatial axes) -> Flatten/Reshape/Squeeze* -> Gemm or MatMul with a
     * constant weight -> [Add of a constant] -> [Softmax] -> (Identity | Dropout)* -> the first output.
     */
    camWeights(layerName: string): tf.Tensor2D | null {
      const pool = single(layerName);
      if (!pool || pool.domain) return null;
      if (pool.op === 'ReduceMean') {
        const axes = (pool.attrs.ints('axes') ?? constantValues(pool.inputs[1]) ?? []).map((a) => (a < 0 ? a + 4 : a)).sort().join(',');
        if (axes !== (layouts.get(layerName) === 'nhwc' ? '1,2' : '2,3')) return null;
      } else if (pool.op !== 'GlobalAveragePool') return null;
      let value = pool.outputs[0];
      let cur = single(value);
      while (cur && ['Flatten', 'Reshape', 'Squeeze', ...PASS].includes(cur.op) && cur.inputs[0] === value) {
        if (cur.op === 'Flatten' && cur.attrs.int('axis', 1) !== 1) return null;
        value = cur.outputs[0];
        cur = single(value);
      }
      if (!cur || cur.inputs[0] !== value) return null;
      let kernel: tf.Tensor | undefined;
      let transpose = false;
      let alpha = 1;
      if (cur.op === 'Gemm') {
        if (cur.attrs.int('transA', 0)) return null;
        kernel = graph.constant(cur.inputs[1]);
        transpose = cur.attrs.int('transB', 0) === 1;
        alpha = cur.attrs.float('alpha', 1);
      } else if (cur.op === 'MatMul') {
        kernel = graph.constant(cur.inputs[1]);
      }
      if (!kernel || kernel.rank !== 2) return null;
      // What follows must be a constant bias, a softmax and identities, ending at the first output.
      let biased = cur.op === 'Gemm' && !!cur.inputs[2];
      let softmax = false;
      value = cur.outputs[0];
      while (value !== output) {
        const next = single(value);
        if (!next || next.domain) return null;
        const others = next.inputs.filter((i) => i !== value);
        if (!biased && !softmax && next.op === 'Add' && others.length === 1 && graph.isConstant(others[0])) biased = true;
        else if (!softmax && next.op === 'Softmax') softmax = true;
        else if (!PASS.has(next.op)) return null;
        value = next.outputs[0];
      }
      return tf.tidy(() => {
        const w = transpose ? tf.transpose(kernel!) : tf.clone(kernel!);
        return (alpha === 1 ? w : tf.mul(w, alpha)) as tf.Tensor2D;
      });
    },
  };
}
