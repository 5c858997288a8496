/**
 * The baseline-map hooks of TensorFlow.js graph models (LoadedModel.runWithFeature and camWeights).
 *
 * tfjs-converter's GraphModel.execute accepts any node name as a feed: the execution subgraph stops at fed nodes
 * (model_analysis.getExecutionSubgraph) and a fed node is never recomputed, so feeding both the image and the
 * layer's node runs the rest of the graph with the layer's output replaced while paths that bypass the layer
 * (residual skips) still start from the image. The graph walked here is the one that runs (fused nodes split,
 * see kernels/graphUnfuse.ts; a split node's last part keeps the fused node's name).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfc from '@tensorflow/tfjs-converter';
import type { InputLayout, LoadedModel, RunWithFeatureOptions } from './types';

interface AttrValue {
  b?: boolean;
}
export interface RunGraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, AttrValue | unknown>;
}

export interface GraphFeatureContext {
  model: tfc.GraphModel;
  /** The nodes of the graph that runs (after unfusing). */
  nodes: RunGraphNode[];
  inputName: string;
  input: InputLayout;
  /** The graph's signature pins the batch to 1: run image by image. */
  batchOfOne: boolean;
}

const baseName = (name: string) => name.replace(/^\^/, '').replace(/:\d+$/, '');
const dataInputs = (n: RunGraphNode) => (n.input ?? []).filter((i) => !i.startsWith('^'));
const boolAttr = (n: RunGraphNode, key: string) => (n.attr?.[key] as AttrValue | undefined)?.b === true;

export function graphFeatureHooks(ctx: GraphFeatureContext): Pick<LoadedModel, 'runWithFeature' | 'camWeights' | 'logitsOf'> {
  const { model, nodes, inputName, input, batchOfOne } = ctx;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const consumers = new Map<string, RunGraphNode[]>();
  for (const n of nodes) {
    for (const i of dataInputs(n)) {
      const b = baseName(i);
      if (!consumers.has(b)) consumers.set(b, []);
      consumers.get(b)!.push(n);
    }
  }
  const single = (name: string): RunGraphNode | null => {
    const c = consumers.get(name) ?? [];
    return c.length === 1 ? c[0] : null;
  };
  const outputName = model.outputs[0].name;
  const outputNode = baseName(outputName);
  const isWeight = (name: string) => !!model.weights[baseName(name)];

  // The final softmax, if any: Softmax -> Identity* -> output. `logits` is the Softmax node's input.
  const tail = new Set<string>();
  let logits: string | null = null;
  for (let n = byName.get(outputNode); n; n = byName.get(baseName(dataInputs(n)[0] ?? ''))) {
    tail.add(n.name);
    if (n.op === 'Softmax') {
      logits = dataInputs(n)[0] ?? null;
      break;
    }
    if (n.op !== 'Identity') break;
  }

  return {
    /** The Softmax node's input, for the softmax node itself or an identity after it that gives the output. */
    logitsOf(layerName: string) {
      if (!logits || !tail.has(layerName)) return null;
      const target = logits;
      const exec = (x: tf.Tensor) => model.execute({ [inputName]: x }, target) as tf.Tensor;
      return {
        probe: (x: tf.Tensor4D) => {
          const fed = input.flat ? tf.reshape(x, [x.shape[0], -1]) : x;
          if (!batchOfOne || fed.shape[0] === 1) return exec(fed);
          return tf.concat(tf.split(fed, fed.shape[0]).map(exec));
        },
        note: `the scores before the softmax (node "${baseName(target)}")`,
      };
    },

    runWithFeature(layerName: string, options: RunWithFeatureOptions = {}) {
      if (!byName.has(layerName)) throw new Error(`no node named "${layerName}" in the graph`);
      const target = options.preSoftmax && logits && !tail.has(layerName) ? logits : outputName;
      const exec = (x: tf.Tensor, f: tf.Tensor) => model.execute({ [inputName]: x, [layerName]: f }, target) as tf.Tensor;
      return (x: tf.Tensor4D, feature: tf.Tensor) => {
        const fed = input.flat ? tf.reshape(x, [x.shape[0], -1]) : x;
        if (!batchOfOne || fed.shape[0] === 1) return exec(fed, feature);
        const xs = tf.split(fed, fed.shape[0]);
        const fs = tf.split(feature, feature.shape[0]);
        return tf.concat(xs.map((one, i) => exec(one, fs[i])));
      };
    },

    /**
     * Mean over axes 1, 2 (global average pooling of an NHWC map) -> [Reshape/Squeeze/Identity]* -> MatMul with a
     * constant kernel -> [BiasAdd/Add with a constant] -> [Softmax] -> Identity* -> the first output.
     */
    camWeights(layerName: string): tf.Tensor2D | null {
      const mean = single(layerName);
      if (!mean || mean.op !== 'Mean') return null;
      const [, axesName] = dataInputs(mean);
      const axesT = axesName ? model.weights[baseName(axesName)]?.[0] : undefined;
      if (!axesT) return null;
      const axes = [...axesT.dataSync()].map((a) => (a < 0 ? a + 4 : a)).sort();
      if (axes.length !== 2 || axes[0] !== 1 || axes[1] !== 2) return null;
      let cur: RunGraphNode | null = single(mean.name);
      while (cur && (cur.op === 'Reshape' || cur.op === 'Squeeze' || cur.op === 'Identity')) cur = single(cur.name);
      if (!cur || cur.op !== 'MatMul' || boolAttr(cur, 'transpose_a')) return null;
      const [, kernelName] = dataInputs(cur);
      if (!kernelName || !isWeight(kernelName)) return null;
      const kernel = model.weights[baseName(kernelName)][0];
      if (kernel.rank !== 2) return null;
      const transposeB = boolAttr(cur, 'transpose_b');
      // The rest of the head must be linear in the MatMul's output up to a final softmax.
      let biased = false;
      let softmax = false;
      while (cur.name !== outputNode) {
        const next: RunGraphNode | null = single(cur.name);
        if (!next) return null;
        const others = dataInputs(next).filter((i) => baseName(i) !== cur!.name);
        if (!biased && !softmax && ['BiasAdd', 'Add', 'AddV2'].includes(next.op) && others.length === 1 && isWeight(others[0])) biased = true;
        else if (!softmax && next.op === 'Softmax') softmax = true;
        else if (next.op !== 'Identity') return null;
        cur = next;
      }
      return (transposeB ? tf.transpose(kernel) : tf.clone(kernel)) as tf.Tensor2D;
    },
  };
}
