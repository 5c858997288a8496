/**
 * Graph surgery for speed: an inference-mode BatchNormalization right after a Conv2D is an affine map per output
 * channel, so the pair is one convolution with a scaled kernel and a bias:
 *   BN(conv(x, W) + b) = conv(x, W * s) + (b * s + beta - mean * s),   s = gamma / sqrt(var + eps).
 * Folding runs the pair as one fused convolution (bias in the same kernel call) and the BN layer as the identity:
 * one op fewer in the forward pass and the BN gradient gone from the backward pass of every SID step.
 *
 * Exact up to float rounding. A conv whose own output is analysed (or that anything else reads) is left alone,
 * since folding changes that output. Works on tfjs-layers models (TensorFlow.js layers and Keras files); graph
 * models arrive folded from the converter, and PyTorch's ONNX export folds BN in eval mode.
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

type AnyLayer = tfl.layers.Layer & {
  inboundNodes: { inboundLayers: AnyLayer[] }[];
  outboundNodes: unknown[];
  call: (inputs: tf.Tensor | tf.Tensor[], kwargs: unknown) => tf.Tensor | tf.Tensor[];
};

interface ConvConfig {
  strides: number[];
  padding: 'valid' | 'same' | 'causal';
  dataFormat?: string;
  dilationRate: number | number[];
  activation?: string;
  useBias: boolean;
}

interface BnConfig {
  axis: number | number[];
  epsilon: number;
  center: boolean;
  scale: boolean;
}

export interface FoldResult {
  /** "conv -> bn" for each folded pair. */
  folded: string[];
  /** The new kernels and biases, which the model's dispose must free. */
  tensors: tf.Tensor[];
}

const single = (x: tf.Tensor | tf.Tensor[]): tf.Tensor => (Array.isArray(x) ? x[0] : x);

/** The Conv2D a BatchNormalization can be folded into, or null (with no reason needed: it is an optimisation). */
function foldableConv(bn: AnyLayer, keep: ReadonlySet<string>): AnyLayer | null {
  if (bn.getClassName() !== 'BatchNormalization' || bn.inboundNodes.length !== 1) return null;
  const cfg = bn.getConfig() as unknown as BnConfig;
  const axis = Array.isArray(cfg.axis) ? cfg.axis : [cfg.axis];
  if (axis.length !== 1 || !(axis[0] === -1 || axis[0] === 3)) return null;
  const inbound = bn.inboundNodes[0].inboundLayers;
  if (inbound.length !== 1) return null;
  const conv = inbound[0];
  if (conv.getClassName() !== 'Conv2D' || keep.has(conv.name)) return null;
  // Only this BN may read the conv's output, and the conv must be used once (not a shared layer).
  if (conv.inboundNodes.length !== 1 || conv.outboundNodes.length !== 1) return null;
  const c = conv.getConfig() as unknown as ConvConfig;
  if ((c.activation ?? 'linear') !== 'linear' || (c.dataFormat ?? 'channelsLast') !== 'channelsLast' || c.padding === 'causal') return null;
  return conv;
}

/**
 * Folds every foldable Conv2D -> BatchNormalization pair of `model` whose conv is not in `keep` (the analysed layers),
 * by replacing the two layers' `call` on these instances. Call it once, before any probe runs.
 */
export function foldBatchNorms(model: tfl.LayersModel, keep: ReadonlySet<string>): FoldResult {
  const result: FoldResult = { folded: [], tensors: [] };
  for (const layer of model.layers as AnyLayer[]) {
    const conv = foldableConv(layer, keep);
    if (!conv) continue;
    const bn = layer;
    const bnCfg = bn.getConfig() as unknown as BnConfig;
    const convCfg = conv.getConfig() as unknown as ConvConfig;
    const convWeights = conv.getWeights();
    const bnWeights = bn.getWeights();
    // Keras order: gamma (if scale), beta (if center), moving mean, moving variance.
    let i = 0;
    const gamma = bnCfg.scale ? bnWeights[i++] : null;
    const beta = bnCfg.center ? bnWeights[i++] : null;
    const mean = bnWeights[i++];
    const variance = bnWeights[i++];
    const [kernel, bias] = tf.tidy(() => {
      let s = tf.rsqrt(tf.add(variance, bnCfg.epsilon));
      if (gamma) s = tf.mul(s, gamma);
      let shift = tf.neg(tf.mul(mean, s));
      if (beta) shift = tf.add(shift, beta);
      if (convCfg.useBias) shift = tf.add(shift, tf.mul(convWeights[1], s));
      return [tf.mul(convWeights[0], s) as tf.Tensor4D, shift as tf.Tensor1D];
    });
    result.tensors.push(kernel, bias);
    const strides = convCfg.strides as [number, number];
    const dilations = (Array.isArray(convCfg.dilationRate) ? convCfg.dilationRate : [convCfg.dilationRate, convCfg.dilationRate]) as [number, number];
    const pad = convCfg.padding as 'valid' | 'same';
    conv.call = (inputs) => tf.fused.conv2d({ x: single(inputs) as tf.Tensor4D, filter: kernel as tf.Tensor4D, strides, pad, dilations, dataFormat: 'NHWC', bias });
    // A new tensor over the same data (no copy): the executor may dispose the conv's output once it is used.
    bn.call = (inputs) => tf.clone(single(inputs));
    result.folded.push(`${conv.name} -> ${bn.name}`);
  }
  return result;
}
