/**
 * The one interface every model format implements: load a file, list the layers that can be probed with their
 * output shapes, and give a function that runs the frozen model from its input up to a chosen layer.
 * Adding a format means adding one file in this folder and listing it in ./index.ts.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { ModelFormat } from '../report';

export interface ProbeLayer {
  name: string;
  /** Layer class (Conv2D) or graph op (FusedConv2D). */
  kind: string;
  /** Output shape without the batch dimension (null where unknown). */
  outputShape: (number | null)[];
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
  dispose(): void;
}

export interface ModelLoader {
  format: ModelFormat;
  /** Whether this loader handles the file, judged from its name and (for model.json) its parsed content. */
  accepts(file: string, json: unknown): boolean;
  load(file: string, json: unknown): Promise<LoadedModel>;
}
