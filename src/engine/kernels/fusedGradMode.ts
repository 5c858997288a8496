/**
 * In gradient mode, runs tf.fused.conv2d / depthwiseConv2d / matMul as their unfused ops.
 *
 * Why: every tfjs-layers Conv2D (and Dense with a fusable activation) calls tf.fused.*. Under tf.grad, tfjs
 * keeps the fused kernel when the activation is linear and gives it a custom gradient that computes the
 * input AND the filter (and bias) gradients eagerly. We only need the input gradient, so the filter gradient
 * (a full conv per layer per step) is wasted work. The unfused ops (conv2d + add + activation) have registered
 * per-input gradients and the tape only evaluates the ones on the path to the input, so the weight
 * gradients are never computed. This is exactly what tfjs itself does under tf.grad for non-linear fused
 * activations, so forward values are unchanged (up to float rounding of the bias add).
 *
 * Outside gradient mode (tape off) the original fused op runs. Only models that reach these ops through the
 * tfjs-core package object are affected: tfjs-layers is; tfjs-converter bundles its own copy of the ops, so
 * graph models keep the fused path (conv2dBackpropFilter.ts / depthwiseBackpropFilter.ts) unless their
 * topology goes through unfuseGraphModel (graphUnfuse.ts) first.
 * Also restores dilated-conv gradients for fused convs, which the fused custom gradient rejects.
 */
import * as tf from '@tensorflow/tfjs-core';

type Act = 'linear' | 'relu' | 'prelu' | 'elu' | 'relu6' | 'leakyrelu' | 'sigmoid';

function activate(y: tf.Tensor, activation: Act | undefined, prelu?: tf.Tensor, alpha?: number): tf.Tensor {
  switch (activation ?? 'linear') {
    case 'linear': return y;
    case 'relu': return tf.relu(y);
    case 'elu': return tf.elu(y);
    case 'relu6': return tf.relu6(y);
    case 'prelu': return tf.prelu(y, prelu as tf.Tensor);
    case 'leakyrelu': return tf.leakyRelu(y, alpha);
    case 'sigmoid': return tf.sigmoid(y);
    default: throw new Error(`Unknown fused activation ${activation}.`);
  }
}

function inGradientMode(): boolean {
  // Same condition tfjs uses (fused_util.shouldFuse): tf.grad / tf.valueAndGrad / tf.variableGrads are active.
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

interface FusedOps {
  conv2d: typeof tf.fused.conv2d;
  depthwiseConv2d: typeof tf.fused.depthwiseConv2d;
  matMul: typeof tf.fused.matMul;
}

let originals: FusedOps | null = null;

export function installFusedGradMode(): void {
  if (originals) return;
  const fused = tf.fused as unknown as FusedOps;
  const orig: FusedOps = { conv2d: fused.conv2d, depthwiseConv2d: fused.depthwiseConv2d, matMul: fused.matMul };
  originals = orig;

  fused.conv2d = ((args: Parameters<typeof tf.fused.conv2d>[0]) => {
    const { dataFormat = 'NHWC' } = args;
    if (!inGradientMode() || dataFormat !== 'NHWC') return orig.conv2d(args);
    const { x, filter, strides, pad, dilations = [1, 1], dimRoundingMode, bias, activation, preluActivationWeights, leakyreluAlpha } = args;
    return tf.tidy(() => {
      let y: tf.Tensor = tf.conv2d(x as tf.Tensor4D, filter, strides, pad, 'NHWC', dilations, dimRoundingMode);
      if (bias != null) y = tf.add(y, bias);
      return activate(y, activation as Act, preluActivationWeights as tf.Tensor, leakyreluAlpha);
    });
  }) as typeof tf.fused.conv2d;

  fused.depthwiseConv2d = ((args: Parameters<typeof tf.fused.depthwiseConv2d>[0]) => {
    const { dataFormat = 'NHWC' } = args;
    if (!inGradientMode() || dataFormat !== 'NHWC') return orig.depthwiseConv2d(args);
    const { x, filter, strides, pad, dilations = [1, 1], dimRoundingMode, bias, activation, preluActivationWeights, leakyreluAlpha } = args;
    return tf.tidy(() => {
      let y: tf.Tensor = tf.depthwiseConv2d(x as tf.Tensor4D, filter, strides, pad, 'NHWC', dilations, dimRoundingMode);
      if (bias != null) y = tf.add(y, bias);
      return activate(y, activation as Act, preluActivationWeights as tf.Tensor, leakyreluAlpha);
    });
  }) as typeof tf.fused.depthwiseConv2d;

  fused.matMul = ((args: Parameters<typeof tf.fused.matMul>[0]) => {
    if (!inGradientMode()) return orig.matMul(args);
    const { a, b, transposeA = false, transposeB = false, bias, activation, preluActivationWeights, leakyreluAlpha } = args;
    return tf.tidy(() => {
      let y: tf.Tensor = tf.matMul(a, b, transposeA, transposeB);
      if (bias != null) y = tf.add(y, bias);
      return activate(y, activation as Act, preluActivationWeights as tf.Tensor, leakyreluAlpha);
    });
  }) as typeof tf.fused.matMul;
}

/** Puts the original fused ops back (for tests and benchmarks). */
export function uninstallFusedGradMode(): void {
  if (!originals) return;
  Object.assign(tf.fused as unknown as FusedOps, originals);
  originals = null;
}

export function fusedGradModeInstalled(): boolean {
  return originals !== null;
}
