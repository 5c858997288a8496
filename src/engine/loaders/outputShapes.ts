/**
 * Output shapes of a graph's probe points from forward passes on blank images. When the model accepts any image
 * size, a second pass at another size tells which dimensions follow the image size: those are reported as
 * unknown (null). Used by the loaders that only learn shapes by running the graph (tfjs graph models, ONNX).
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { InputLayout } from './types';

export interface ProbedOutput {
  /** Without the batch dimension; null where it depends on the image size. */
  shape: (number | null)[];
  dtype: tf.DataType;
}

/** `run(h, w)` executes the graph on a blank h x w image and returns every candidate output's shape and dtype. */
export function outputShapes(input: InputLayout, run: (h: number, w: number) => { shape: number[]; dtype: tf.DataType }[]): ProbedOutput[] {
  const outs = run(input.height ?? 224, input.width ?? 224);
  const other = input.height === null || input.width === null ? run(input.height ?? 256, input.width ?? 256) : undefined;
  return outs.map((o, i) => ({
    shape: o.shape.slice(1).map((d, k) => (other && other[i].shape[k + 1] !== d ? null : d)),
    dtype: o.dtype,
  }));
}
