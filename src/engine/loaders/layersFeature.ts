/**
 * The baseline-map hooks of tfjs-layers models (LoadedModel.runWithFeature and camWeights), used by
 * wrapLayersModel for TensorFlow.js layers models and Keras files.
 *
 * runWithFeature runs the model itself (tfjs-layers' own graph execution, so branches, merges and nested models
 * behave as in predict) with the named layer's `call` temporarily replaced by one that returns (a copy of) the feature:
 * every consumer of that layer reads the feature, every other path is computed from the input. The patch lives
 * only for the synchronous forward pass (gradients are taken from the tape afterwards, without calling layers).
 * A layer applied at several places of the graph (shared weights) is refused: its outputs differ per use.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { InputLayout, RunWithFeatureOptions } from './types';

type Patch = [target: object, key: string, value: unknown];

/** Sets each property for the duration of fn, then restores it (deleting it when it was inherited). */
function withPatches<T>(patches: Patch[], fn: () => T): T {
  const saved = patches.map(([obj, key]) => ({ obj, key, own: Object.prototype.hasOwnProperty.call(obj, key), value: (obj as Record<string, unknown>)[key] }));
  try {
    for (const [obj, key, value] of patches) (obj as Record<string, unknown>)[key] = value;
    return fn();
  } finally {
    for (const s of saved.reverse()) {
      if (s.own) (s.obj as Record<string, unknown>)[s.key] = s.value;
      else delete (s.obj as Record<string, unknown>)[s.key];
    }
  }
}

interface ActivationLike {
  getClassName(): string;
}

function activationOf(layer: tfl.layers.Layer): ActivationLike | null {
  const a = (layer as unknown as { activation?: unknown }).activation;
  return a && typeof (a as ActivationLike).getClassName === 'function' ? (a as ActivationLike) : null;
}

const isSoftmaxActivation = (layer: tfl.layers.Layer) => activationOf(layer)?.getClassName() === 'softmax';
/** A Softmax layer, or an Activation layer whose activation is softmax. */
const isSoftmaxLayer = (layer: tfl.layers.Layer) => layer.getClassName() === 'Softmax' || (layer.getClassName() === 'Activation' && isSoftmaxActivation(layer));

/** What Dense/Conv layers call in place of softmax to give their pre-activation scores ('linear' is fused). */
const LINEAR = { getClassName: () => 'linear', apply: (x: tf.Tensor) => x };

/** The layers that consume `layer`'s (only) output. */
function consumers(layer: tfl.layers.Layer): tfl.layers.Layer[] {
  return layer.outboundNodes.map((n) => n.outboundLayer);
}

export function layersRunWithFeature(
  model: tfl.LayersModel,
  input: InputLayout,
  layerName: string,
  options: RunWithFeatureOptions = {},
): (x: tf.Tensor4D, feature: tf.Tensor) => tf.Tensor {
  const layer = model.getLayer(layerName);
  if (layer.inboundNodes.length !== 1) {
    throw new Error(`layer "${layerName}" is applied ${layer.inboundNodes.length} times in the model (shared weights); its output cannot be replaced by one feature`);
  }
  const output = model.outputs[0];
  // Only the first output is computed (a functional view over the same layers and weights).
  const runner = model.outputs.length === 1 ? model : tfl.model({ inputs: model.inputs, outputs: output });
  let current: tf.Tensor | undefined;
  // A copy: tfjs-layers' executor disposes a layer's output once its consumers have run (the copy's gradient is
  // the identity, so gradients still reach `feature`).
  const patches: Patch[] = [[layer, 'call', () => tf.clone(current!)]];
  const last = output.sourceLayer;
  if (options.preSoftmax && last !== layer && last.inboundNodes.length === 1) {
    if (isSoftmaxActivation(last)) patches.push([last, 'activation', LINEAR]); // Dense/Conv(softmax) or Activation('softmax')
    else if (last.getClassName() === 'Softmax') patches.push([last, 'call', (inputs: tf.Tensor | tf.Tensor[]) => (Array.isArray(inputs) ? inputs[0] : inputs)]);
  }
  return (x, feature) => {
    const fed = input.flat ? tf.reshape(x, [x.shape[0], -1]) : x;
    current = feature;
    try {
      const out = withPatches(patches, () => runner.apply(fed, { training: false }) as tf.Tensor | tf.Tensor[]);
      return Array.isArray(out) ? out[0] : out;
    } finally {
      current = undefined;
    }
  };
}

/**
 * LoadedModel.logitsOf for layers models: when `layerName` is the layer giving the first output and it ends in a
 * softmax, a probe of the scores before it. A Dense/Conv layer with a softmax activation is probed with that
 * activation swapped for the identity during the (synchronous) forward pass; a Softmax layer or an
 * Activation('softmax') layer is probed at its input layer.
 */
export function layersLogitsOf(
  model: tfl.LayersModel,
  layerName: string,
  probeOf: (name: string) => (x: tf.Tensor4D) => tf.Tensor,
): { probe: (x: tf.Tensor4D) => tf.Tensor; note: string } | null {
  const last = model.outputs[0].sourceLayer;
  if (last.name !== layerName || last.inboundNodes.length !== 1) return null;
  if (isSoftmaxLayer(last)) {
    const before = last.inboundNodes[0].inboundLayers;
    if (before.length !== 1 || before[0].getClassName() === 'InputLayer') return null;
    return { probe: probeOf(before[0].name), note: `the scores before the softmax (the output of layer "${before[0].name}")` };
  }
  if (isSoftmaxActivation(last)) {
    const probe = probeOf(layerName);
    return {
      probe: (x) => withPatches([[last, 'activation', LINEAR]], () => probe(x)),
      note: `the layer's scores before its softmax activation`,
    };
  }
  return null;
}

/** Layers that are the identity at inference between global average pooling and the dense head. */
const PASS_THROUGH = new Set(['Dropout', 'SpatialDropout1D', 'GaussianDropout', 'GaussianNoise', 'AlphaDropout', 'Flatten']);

/**
 * The dense kernel [channels, outputs] when `layerName`'s output feeds only GlobalAveragePooling2D (channels last),
 * then (through inference-time identities) one Dense layer with a linear or softmax activation whose output, or a
 * softmax of it, is the model's first output. null otherwise.
 */
export function layersCamWeights(model: tfl.LayersModel, layerName: string): tf.Tensor2D | null {
  const layer = model.getLayer(layerName);
  if (layer.inboundNodes.length !== 1) return null;
  const single = (l: tfl.layers.Layer): tfl.layers.Layer | null => {
    const next = consumers(l);
    return next.length === 1 && next[0].inboundNodes.length === 1 ? next[0] : null;
  };
  const gap = single(layer);
  if (!gap || gap.getClassName() !== 'GlobalAveragePooling2D') return null;
  if ((gap as unknown as { dataFormat?: string }).dataFormat === 'channelsFirst') return null;
  if ((gap.getOutputAt(0) as tfl.SymbolicTensor).shape.length !== 2) return null; // keepDims variants
  let dense = single(gap);
  while (dense && PASS_THROUGH.has(dense.getClassName())) dense = single(dense);
  if (!dense || dense.getClassName() !== 'Dense') return null;
  const act = activationOf(dense)?.getClassName() ?? 'linear';
  if (act !== 'linear' && act !== 'softmax') return null;
  const last = model.outputs[0].sourceLayer;
  if (last !== dense) {
    const after = single(dense);
    if (!after || after !== last || !isSoftmaxLayer(after)) return null;
  }
  const kernel = dense.getWeights()[0];
  if (!kernel || kernel.rank !== 2) return null;
  return tf.clone(kernel) as tf.Tensor2D;
}
