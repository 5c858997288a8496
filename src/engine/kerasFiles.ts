/**
 * The Keras 2 pair `model.to_json()` saved as `name.json` + `model.save_weights()` saved as `name.h5` /
 * `name.weights.h5`: recognising the JSON, and finding each file from the other. No tfjs (the extension imports
 * this for model hashes and menus).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const MODEL_CLASSES = new Set(['Sequential', 'Functional', 'Model']);

/**
 * A Keras `to_json()` document: `class_name` (a model class) and `config` at the top, with `keras_version`
 * (Keras 2) or Keras 3's `module`; not a TensorFlow.js model.json (which nests it under `modelTopology`).
 */
export function isKerasToJson(json: unknown): boolean {
  if (!json || typeof json !== 'object' || Array.isArray(json)) return false;
  const j = json as Record<string, unknown>;
  if ('modelTopology' in j || 'weightsManifest' in j) return false;
  if (typeof j.class_name !== 'string' || !('config' in j) || typeof j.config !== 'object' || j.config === null) return false;
  return typeof j.keras_version === 'string' || (typeof j.module === 'string' && j.module.startsWith('keras')) || MODEL_CLASSES.has(j.class_name);
}

function readJson(file: string): unknown {
  try {
    if (statSync(file).size > 64 * 1024 * 1024) return undefined;
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** `dir/name.json` -> the weight files it may have beside it, in the order they are looked for. */
export function weightCandidates(jsonPath: string): string[] {
  const dir = path.dirname(jsonPath);
  const stem = path.basename(jsonPath).replace(/\.json$/i, '');
  const stems = [stem, stem.replace(/[._-]?(architecture|arch|model|config|structure)$/i, '')].filter((s, i, a) => s && a.indexOf(s) === i);
  const out: string[] = [];
  for (const s of stems) for (const ext of ['.weights.h5', '.h5', '.hdf5', '_weights.h5']) out.push(path.join(dir, s + ext));
  return out;
}

/** The weights file beside a Keras to_json file, or undefined. */
export function findKerasWeights(jsonPath: string): string | undefined {
  return weightCandidates(jsonPath).find((f) => existsSync(f) && statSync(f).isFile());
}

/** `dir/name.weights.h5` or `dir/name.h5` -> `dir/name.json` when that is a Keras to_json file, else undefined. */
export function findKerasJsonFor(h5Path: string): string | undefined {
  const dir = path.dirname(h5Path);
  const base = path.basename(h5Path);
  const stem = base.replace(/(\.weights)?\.(h5|hdf5)$/i, '').replace(/_weights$/i, '');
  if (stem === base) return undefined;
  for (const name of [`${stem}.json`, `${stem}_architecture.json`, `${stem}_model.json`, `${stem}.architecture.json`]) {
    const f = path.join(dir, name);
    if (existsSync(f) && isKerasToJson(readJson(f))) return f;
  }
  return undefined;
}

/**
 * The files a model's identity (sha256) covers, in hash order: a Keras to_json file and its weights; an HDF5 file
 * with a Keras to_json companion, both; otherwise undefined (the format's own rule applies).
 */
export function kerasPairFiles(modelPath: string, json?: unknown): string[] | undefined {
  const lower = modelPath.toLowerCase();
  if (lower.endsWith('.json')) {
    if (!isKerasToJson(json ?? readJson(modelPath))) return undefined;
    const w = findKerasWeights(modelPath);
    return w ? [modelPath, w] : [modelPath];
  }
  if (/\.(h5|hdf5)$/.test(lower)) {
    const j = findKerasJsonFor(modelPath);
    return j ? [modelPath, j] : undefined;
  }
  return undefined;
}
