/**
 * The model's identity in reports: sha256 over model.json's bytes, then every weight shard's bytes in manifest
 * order (groups in order, paths in order within a group). The loader (loaders/tfjsArtifacts.ts) hashes the bytes it
 * has already read; the extension hashes the files to tell whether a saved report still matches its model.
 * No tfjs here: the extension bundle imports this file.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { kerasPairFiles } from './kerasFiles';

/** The model hash over bytes already in memory: model.json, then the shards in manifest order. */
export function modelSha256FromParts(modelJson: Uint8Array, shards: Iterable<Uint8Array>): string {
  const hash = createHash('sha256');
  hash.update(modelJson);
  for (const shard of shards) hash.update(shard);
  return hash.digest('hex');
}

/** Shard paths (relative to model.json's folder) in manifest order; [] when there is no usable manifest. */
export function manifestShardPaths(json: unknown): string[] {
  const manifest = (json as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!Array.isArray(manifest)) return [];
  const out: string[] = [];
  for (const group of manifest) {
    const paths = (group as { paths?: unknown } | null)?.paths;
    if (Array.isArray(paths)) for (const p of paths) if (typeof p === 'string') out.push(p);
  }
  return out;
}

function streamInto(hash: Hash, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve());
  });
}

/**
 * The model hash of a model.json on disk, streaming the shards (a large model is never held in memory).
 * Rejects when model.json or a shard cannot be read or model.json is not JSON.
 * A single-file model (Keras .h5/.hdf5/.keras, anything not ending in .json) is the sha256 of that file; a Keras
 * to_json file and its weights file (from either side) hash both files' bytes.
 */
export async function modelSha256(modelJsonPath: string): Promise<string> {
  const pair = kerasPairFiles(modelJsonPath);
  if (pair) return filesSha256(pair);
  if (!modelJsonPath.toLowerCase().endsWith('.json')) return fileSha256(modelJsonPath);
  const bytes = await readFile(modelJsonPath);
  const json: unknown = JSON.parse(bytes.toString('utf8'));
  const hash = createHash('sha256');
  hash.update(bytes);
  const dir = path.dirname(modelJsonPath);
  for (const p of manifestShardPaths(json)) await streamInto(hash, path.join(dir, p));
  return hash.digest('hex');
}

/**
 * The hash of a Keras to_json file with its weights (or of weights with their to_json file): the bytes of each
 * file in turn (kerasFiles.ts says which, in which order).
 */
export async function filesSha256(files: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const f of files) await streamInto(hash, f);
  return hash.digest('hex');
}

/** The model hash of a single-file model (Keras .h5, .hdf5, .keras): sha256 of the file's bytes, streamed. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  await streamInto(hash, file);
  return hash.digest('hex');
}
