/** Writes a tfjs Layers model to a folder as model.json + weights.bin (what model.save('file://') does in tfjs-node). */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export async function saveLayersModel(model: tfl.LayersModel, dir: string, metadata?: Record<string, unknown>): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'model.json');
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const data = artifacts.weightData instanceof ArrayBuffer ? artifacts.weightData : tf.io.concatenateArrayBuffers(artifacts.weightData as ArrayBuffer[]);
      writeFileSync(path.join(dir, 'weights.bin'), Buffer.from(data));
      const json = {
        format: 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
        ...(metadata ? { userDefinedMetadata: metadata } : {}),
      };
      writeFileSync(file, JSON.stringify(json));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return file;
}
