/** TensorFlow.js Layers models (model.json with a Keras-style modelTopology, from model.save() or tfjs-converter). */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../errors';
import type { ModelFormat } from '../report';
import type { LoadedModel, ModelLoader, ProbeLayer } from './types';
import { inputLayoutFromShape, readTfjsArtifacts } from './tfjsArtifacts';
import { rescaleLayersConvPair } from './rescale';
import { layersCamWeights, layersLogitsOf, layersRunWithFeature } from './layersFeature';
import { foldBatchNorms, type FoldResult } from './foldBatchNorm';
import { detectFromLayersModel } from '../preprocessing/detect';

function isLayersJson(json: unknown): boolean {
  if (!json || typeof json !== 'object') return false;
  const j = json as Record<string, unknown>;
  if (j.format === 'layers-model') return true;
  const topo = j.modelTopology as Record<string, unknown> | undefined;
  return !!topo && j.format !== 'graph-model' && !('node' in topo) && ('class_name' in topo || 'model_config' in topo || 'config' in topo);
}

function describeLoadError(e: Error): string {
  const m = e.message;
  const unknown = /Unknown (layer|activation|initializer|regularizer|constraint|loss|metric)s?: ([^\s.]+)/.exec(m);
  if (unknown) {
    return `unsupported ${unknown[1]} "${unknown[2]}" (TensorFlow.js layers do not implement it); replace it in the model or convert the model to a graph model with tensorflowjs_converter`;
  }
  return `cannot build the model (${m.split('\n')[0]}); check that it was saved by TensorFlow.js or tfjs-converter`;
}

export const tfjsLayersLoader: ModelLoader = {
  format: 'tfjs-layers',
  accepts: (file, json) => file.endsWith('.json') && isLayersJson(json),
  async load(file, json): Promise<LoadedModel> {
    const { artifacts, sha256 } = readTfjsArtifacts(file, json as Record<string, unknown>);
    let model: tfl.LayersModel;
    try {
      model = await tfl.loadLayersModel({ load: async () => artifacts }, { strict: true });
    } catch (e) {
      throw new UserError(describeLoadError(e as Error), file);
    }
    return wrapLayersModel(model, file, 'tfjs-layers', sha256);
  },
};

/** Wraps a built tfjs LayersModel (weights loaded) as a LoadedModel: probe-able layers, truncated sub-models. */
export function wrapLayersModel(model: tfl.LayersModel, file: string, format: ModelFormat, sha256: string): LoadedModel {
  model.trainable = false;
  if (model.inputs.length !== 1) {
    model.dispose();
    throw new UserError(`the model has ${model.inputs.length} inputs; only single-input image models are supported`, file);
  }
  const input = inputLayoutFromShape(model.inputs[0].shape.slice(1), file);

  const layers: ProbeLayer[] = [];
  for (const layer of model.layers) {
    if (layer.getClassName() === 'InputLayer') continue;
    let shape: (number | null)[];
    try {
      shape = (layer.getOutputAt(0) as tfl.SymbolicTensor).shape;
    } catch {
      continue; // layers with several outputs cannot be probed as one feature
    }
    const inbound = layer.inboundNodes[0]?.inboundLayers ?? [];
    const inputs = inbound.filter((l) => l.getClassName() !== 'InputLayer').map((l) => l.name);
    layers.push({ name: layer.name, kind: layer.getClassName(), outputShape: shape.slice(1) as (number | null)[], inputs });
  }
  // Only probe-able layers count as producers.
  const probed = new Set(layers.map((l) => l.name));
  for (const l of layers) l.inputs = l.inputs!.filter((i) => probed.has(i));

  const truncated = new Map<string, tfl.LayersModel>();
  let folded: FoldResult | undefined;
  let hint: ReturnType<typeof detectFromLayersModel> = null;
  try {
    hint = detectFromLayersModel(model);
  } catch {
    // detection is a suggestion: a layer whose config cannot be read says nothing
  }
  const wrapped: LoadedModel = {
    path: file,
    format,
    sha256,
    input,
    layers,
    ...(hint ? { preprocessingHint: hint } : {}),
    probe(layerName) {
      let sub = truncated.get(layerName);
      if (!sub) {
        const layer = model.getLayer(layerName);
        // A functional model over the same weights that stops at this layer: only the needed part runs.
        sub = tfl.model({ inputs: model.inputs, outputs: layer.getOutputAt(0) as tfl.SymbolicTensor });
        truncated.set(layerName, sub);
      }
      const m = sub;
      return (x: tf.Tensor4D) => {
        const fed = input.flat ? tf.reshape(x, [x.shape[0], -1]) : x;
        return m.apply(fed, { training: false }) as tf.Tensor;
      };
    },
    runWithFeature: (layerName, options) => layersRunWithFeature(model, input, layerName, options),
    logitsOf: (layerName) => layersLogitsOf(model, layerName, (name) => wrapped.probe(name)),
    camWeights: (layerName) => layersCamWeights(model, layerName),
    rescaleConvPair: (first, factor) => rescaleLayersConvPair(model, file, first, factor),
    optimizeFor(analysed) {
      // INFODISCARD_NO_FOLD=1 turns folding off, to measure what it buys (docs/performance.md).
      if (folded || process.env.INFODISCARD_NO_FOLD === '1') return [];
      folded = foldBatchNorms(model, new Set(analysed));
      return folded.folded;
    },
    dispose() {
      truncated.clear();
      if (folded) tf.dispose(folded.tensors);
      model.dispose();
    },
  };
  return wrapped;
}
