/**
 * TensorFlow SavedModel folders (saved_model.pb + variables/). Only tfjs-node can open them (tf.node.loadSavedModel
 * runs the graph in libtensorflow); without it the user is told what to install, or how to convert the model to a
 * TensorFlow.js graph model, which every backend analyses. With tfjs-node the signature's outputs are the probe
 * points: the graph is one native op, so intermediate nodes are not reachable and gradients exist only where
 * tfjs-node provides them (a missing gradient is reported per layer by the engine).
 */
import * as tf from '@tensorflow/tfjs-core';
import path from 'node:path';
import { UserError } from '../errors';
import { fileSha256 } from '../modelHash';
import { inputLayoutFromShape } from './tfjsArtifacts';
import type { LoadedModel, ModelLoader } from './types';

const CONVERT = 'or convert it with "tensorflowjs_converter --input_format=tf_saved_model <folder> <out>" and analyse <out>/model.json on any backend';

interface TfjsNodeSavedModel {
  inputs: { name: string; shape?: number[] }[];
  outputs: { name: string; shape?: number[] }[];
  predict(x: tf.Tensor, config?: unknown): tf.Tensor | tf.Tensor[] | Record<string, tf.Tensor>;
  dispose(): void;
}

function tfjsNode(): { loadSavedModel(dir: string): Promise<TfjsNodeSavedModel> } | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  try {
    return (require('@tensorflow/tfjs-node') as { node: { loadSavedModel(dir: string): Promise<TfjsNodeSavedModel> } }).node;
  } catch {
    return null;
  }
}

export const savedModelLoader: ModelLoader = {
  format: 'tf-saved-model',
  accepts: (file) => path.basename(file) === 'saved_model.pb',
  async load(file): Promise<LoadedModel> {
    const dir = path.dirname(file);
    const node = tfjsNode();
    if (!node) {
      throw new UserError(
        `is a TensorFlow SavedModel, which needs the tensorflow backend: install @tensorflow/tfjs-node (npm install @tensorflow/tfjs-node) and use --backend auto or tensorflow, ${CONVERT}`,
        dir,
      );
    }
    let model: TfjsNodeSavedModel;
    try {
      model = await node.loadSavedModel(dir);
    } catch (e) {
      throw new UserError(`cannot open the SavedModel (${(e as Error).message.split('\n')[0]}); ${CONVERT}`, dir);
    }
    if (model.inputs.length !== 1) {
      model.dispose();
      throw new UserError(`the SavedModel signature has ${model.inputs.length} inputs; only single-input image models are supported`, dir);
    }
    const input = inputLayoutFromShape((model.inputs[0].shape ?? []).slice(1).map((d) => (d < 0 ? null : d)), dir);
    const outputs = model.outputs.map((o) => o.name);
    const sha256 = await fileSha256(file);
    return {
      path: file,
      format: 'tf-saved-model',
      sha256,
      input,
      layers: model.outputs.map((o) => ({ name: o.name, kind: 'SignatureOutput', inputs: [], outputShape: (o.shape ?? []).slice(1).map((d) => (d < 0 ? null : d)) })),
      probe(layerName) {
        const index = outputs.indexOf(layerName);
        return (x: tf.Tensor4D) => {
          const out = model.predict(input.flat ? tf.reshape(x, [x.shape[0], -1]) : x);
          if (out instanceof tf.Tensor) return out;
          return Array.isArray(out) ? out[index] : out[layerName];
        };
      },
      dispose() {
        model.dispose();
      },
    };
  },
};
