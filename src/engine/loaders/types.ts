/**
 * The one interface every model format implements: load a file, list the layers that can be probed with their
 * output shapes, and give a function that runs the frozen model from its input up to a chosen layer.
 * Adding a format means adding one file in this folder and listing it in ./index.ts.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { NativeProbe } from '../native/ortProbe';
import type { ModelFormat, PreprocessingProfile } from '../report';

export interface ProbeLayer {
  name: string;
  /** Layer class (Conv2D) or graph op (FusedConv2D). */
  kind: string;
  /** Output shape without the batch dimension (null where unknown). */
  outputShape: (number | null)[];
  /**
   * The probe layers whose outputs this one reads (image-dependent inputs only; the model input and constants are
   * left out). Absent where the format gives no connectivity: readers then take the list as a chain.
   */
  inputs?: string[];
}

export type FeatureLayout = 'nhwc' | 'nchw';

export interface RunWithFeatureOptions {
  /** Return the scores before a final softmax when there is one (see LoadedModel.runWithFeature). */
  preSoftmax?: boolean;
}

/** The image layout the model consumes. `flat` models take a vector of height*width*channels values. */
export interface InputLayout {
  height: number | null;
  width: number | null;
  channels: number;
  flat: boolean;
  /** The model's own input shape, without the batch dimension. */
  shape: (number | null)[];
}

export interface LoadedModel {
  path: string;
  format: ModelFormat;
  sha256: string;
  input: InputLayout;
  layers: ProbeLayer[];
  /**
   * Runs the model from a batch of NHWC inputs (already in model units) to the named layer's output.
   * Must be differentiable w.r.t. the input; model weights are constants here.
   */
  probe(layerName: string): (x: tf.Tensor4D) => tf.Tensor;
  /**
   * The named layer's SID passes on a native runtime, for one image (NHWC [1, H, W, C], model units), where the
   * format has one (ONNX on onnxruntime-node, src/engine/native/): the probe, or the reason there is none (the
   * caller then keeps `probe`). Absent for formats without one.
   */
  nativeProbe?(layerName: string, image: Float32Array, threads: number, first?: 'search' | 'vjp'): Promise<NativeProbe | string>;
  /**
   * Baseline maps (gradients of the output w.r.t. a feature): runs the whole model from a batch of NHWC inputs
   * to its first output with the named layer's output REPLACED by `feature` (same shape as probe(layerName)'s
   * output). Paths that bypass the layer (residual skips) are still computed from x. Differentiable w.r.t.
   * `feature`. With `preSoftmax`, when the output is a softmax applied last (a softmax activation of the last
   * layer, a Softmax layer/node, possibly followed by identities) the scores before it are returned instead;
   * otherwise the output itself. Absent for formats whose graph cannot be entered in the middle.
   */
  runWithFeature?(layerName: string, options?: RunWithFeatureOptions): (x: tf.Tensor4D, feature: tf.Tensor) => tf.Tensor;
  /**
   * When the named layer is the model's output and ends in a softmax (a softmax activation of that layer, or a
   * Softmax layer/node, possibly followed by identities): a probe of the scores before that softmax, with a note
   * for the report saying what it is. null for any other layer. Absent for formats that cannot find it.
   */
  logitsOf?(layerName: string): { probe: (x: tf.Tensor4D) => tf.Tensor; note: string } | null;
  /**
   * CAM weights: when the named layer's output feeds only a global average pooling over its spatial axes,
   * then one linear (dense) layer whose output (or its softmax) is the model's first output, the dense kernel
   * as [channels, outputs] (w_{c,y}; a new tensor the caller disposes). null for any other layer.
   */
  camWeights?(layerName: string): tf.Tensor2D | null;
  /**
   * For a token-sequence feature [tokens, dim] (a vision transformer block's output): the spatial layout of its
   * patch tokens, when recognised: `skip` leading tokens (ViT's class token) then height x width patches in row
   * order. null (or absent) where the tokens have no declared grid; Grad-CAM and CAM are then refused.
   */
  tokenGrid?(layerName: string): { skip: number; height: number; width: number } | null;
  /** Axis order of the named layer's rank-4 output; 'nhwc' when absent. ONNX convolutional features are NCHW. */
  featureLayout?(layerName: string): FeatureLayout;
  /**
   * The paper's coherency check (Sec. 4): divides the kernel and bias of conv layer `first` by `factor` and
   * multiplies the kernel of the next conv (or dense) layer by `factor` (its bias unchanged), in memory only.
   * Allowed only when everything between the two is positively homogeneous (ReLU, pooling, reshapes, dropout,
   * padding) and nothing else reads those outputs, so the network output is unchanged; otherwise a UserError
   * names the layer and the reason. Each call rescales again. Absent for formats whose weights cannot be changed.
   */
  rescaleConvPair?(first: string, factor: number): RescaledPair;
  /**
   * Speed-ups that leave every one of `analysed` layers' outputs unchanged (up to float rounding), applied once
   * before the first probe: e.g. BatchNormalization folded into the convolution before it. Returns what was done,
   * for the log. Absent where there is nothing to do.
   */
  optimizeFor?(analysed: readonly string[]): string[];
  /**
   * The preprocessing the file itself says the model wants (a Rescaling layer, ONNX metadata, a torchvision stem,
   * a graph signature), with its source; absent when it says nothing (src/engine/preprocessing/detect.ts).
   */
  preprocessingHint?: PreprocessingProfile;
  dispose(): void;
}

/** What rescaleConvPair changed. Names are probe-layer names (as in `layers`). */
export interface RescaledPair {
  first: string;
  second: string;
  /** Outputs between the two (bias adds, ReLU, pooling ...): scaled by 1/factor, like `first`'s output. */
  between: string[];
}

/** What a caller may say about a model file besides its path. */
export interface LoadOptions {
  /** Keras to_json files: the weights file (default: the same-stem .weights.h5 / .h5 beside the JSON). */
  weights?: string;
}

export interface ModelLoader {
  format: ModelFormat;
  /** Whether this loader handles the file, judged from its name and (for model.json) its parsed content. */
  accepts(file: string, json: unknown): boolean;
  load(file: string, json: unknown, options?: LoadOptions): Promise<LoadedModel>;
}
