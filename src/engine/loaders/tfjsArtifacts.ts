/**
 * Reads a TensorFlow.js model.json and its weight shards from disk into ModelArtifacts, checking what can go
 * wrong with files on disk (missing or short shards) so the user is told which file and what to do.
 */
import type * as tf from '@tensorflow/tfjs-core';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import { modelSha256FromParts } from '../modelHash';

const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

interface ManifestGroup {
  paths: string[];
  weights: tf.io.WeightsManifestEntry[];
}

export interface ReadArtifacts {
  artifacts: tf.io.ModelArtifacts;
  sha256: string;
}

function weightBytes(w: tf.io.WeightsManifestEntry): number {
  const count = w.shape.reduce((a, b) => a * b, 1);
  if (w.quantization) return count * (DTYPE_BYTES[w.quantization.dtype] ?? 4);
  if (w.dtype === 'string') return NaN; // variable length; not checked
  return count * (DTYPE_BYTES[w.dtype] ?? 4);
}

export function readModelJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read model (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`is not valid JSON (${(e as Error).message}); re-export the model with tfjs-converter or model.save()`, file);
  }
}

export function readTfjsArtifacts(file: string, json: Record<string, unknown>): ReadArtifacts {
  const dir = path.dirname(file);
  const modelJsonBytes = readFileSync(file);
  const manifest = json.weightsManifest as ManifestGroup[] | undefined;
  if (!Array.isArray(manifest)) {
    throw new UserError('has no "weightsManifest" list; a TensorFlow.js model.json needs one (re-export the model)', file);
  }
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const [g, group] of manifest.entries()) {
    if (!group || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      throw new UserError(`weightsManifest[${g}] needs "paths" and "weights" lists; re-export the model`, file);
    }
    const parts: Buffer[] = [];
    for (const p of group.paths) {
      const shard = path.join(dir, p);
      try {
        statSync(shard);
      } catch {
        throw new UserError(`weight file "${p}" listed in model.json is missing; copy it next to model.json`, file);
      }
      parts.push(readFileSync(shard));
    }
    const data = Buffer.concat(parts);
    const expected = group.weights.reduce((a, w) => a + weightBytes(w), 0);
    if (Number.isFinite(expected) && data.length !== expected) {
      const which = group.paths.join(', ');
      throw new UserError(
        `weight file${group.paths.length > 1 ? 's' : ''} ${which} ${data.length < expected ? 'too short' : 'too long'}: ${data.length} bytes, the manifest needs ${expected}; the download or copy is incomplete or does not belong to this model.json`,
        file,
      );
    }
    specs.push(...group.weights);
    buffers.push(data);
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.length) as ArrayBuffer;
  return {
    artifacts: {
      modelTopology: json.modelTopology as tf.io.ModelArtifacts['modelTopology'],
      format: json.format as string | undefined,
      generatedBy: json.generatedBy as string | undefined,
      convertedBy: json.convertedBy as string | null | undefined,
      userDefinedMetadata: json.userDefinedMetadata as tf.io.ModelArtifacts['userDefinedMetadata'],
      signature: json.signature as tf.io.ModelArtifacts['signature'],
      weightSpecs: specs,
      weightData,
    },
    // The group buffers are the shards concatenated in manifest order: the same bytes modelSha256() streams.
    sha256: modelSha256FromParts(modelJsonBytes, buffers),
  };
}

/** Works out the image layout from a model input shape (batch dimension removed). */
export function inputLayoutFromShape(shape: (number | null)[], file: string) {
  if (shape.length === 3) {
    const [h, w, c] = shape;
    if (c === null) throw new UserError('the model input has an unknown channel count; only NHWC image inputs are supported', file);
    return { height: h, width: w, channels: c, flat: false, shape };
  }
  if (shape.length === 1 && shape[0] !== null) {
    const n = shape[0];
    for (const c of [1, 3]) {
      const side = Math.round(Math.sqrt(n / c));
      if (side * side * c === n) return { height: side, width: side, channels: c, flat: true, shape };
    }
  }
  throw new UserError(
    `the model input shape [${shape.map((d) => d ?? '?').join(', ')}] is not an image (height x width x channels, or a flat square image)`,
    file,
  );
}
