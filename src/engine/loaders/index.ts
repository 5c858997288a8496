/** Picks the loader for a model file. One entry per format; each lives in its own file. */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import { readModelJson } from './tfjsArtifacts';
import { tfjsGraphLoader } from './tfjsGraph';
import { tfjsLayersLoader } from './tfjsLayers';
import { kerasH5Loader, kerasJsonLoader, kerasV3Loader } from './keras';
import { pytorchLoader } from './pytorch';
import { onnxLoader } from './onnx';
import { savedModelLoader } from './savedModel';
import type { LoadedModel, LoadOptions, ModelLoader } from './types';

export type { LoadedModel, LoadOptions, ModelLoader, ProbeLayer, InputLayout } from './types';

// PyTorch before Keras 3: both are zip archives.
export const LOADERS: ModelLoader[] = [tfjsLayersLoader, tfjsGraphLoader, kerasJsonLoader, kerasH5Loader, pytorchLoader, kerasV3Loader, onnxLoader, savedModelLoader];

export async function loadModel(file: string, options: LoadOptions = {}): Promise<LoadedModel> {
  if (!existsSync(file)) throw new UserError('no such model file; give the path to a TensorFlow.js model.json, a Keras .h5/.keras file or an .onnx file', file);
  if (statSync(file).isDirectory()) {
    for (const inner of ['model.json', 'saved_model.pb']) if (existsSync(path.join(file, inner))) return loadModel(path.join(file, inner), options);
    throw new UserError('is a folder without a model.json or saved_model.pb; give the model file', file);
  }
  const json = file.toLowerCase().endsWith('.json') ? readModelJson(file) : undefined;
  const loader = LOADERS.find((l) => l.accepts(file, json));
  if (!loader) {
    throw new UserError(
      file.toLowerCase().endsWith('.json')
        ? 'is not a TensorFlow.js model.json (no Keras-style "modelTopology", not format "graph-model") nor a Keras model.to_json() file (class_name, config, keras_version); re-export it with model.save() or tensorflowjs_converter'
        : `unsupported model format "${path.extname(file) || path.basename(file)}"; supported: TensorFlow.js model.json (layers or graph models), Keras .h5/.hdf5, .keras and to_json .json with weights, ONNX .onnx, TensorFlow SavedModel folders, PyTorch TorchScript .pt and torch.export .pt2 (exported to ONNX)`,
      file,
    );
  }
  return loader.load(file, json, options);
}
