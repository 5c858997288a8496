/**
 * Trained RU decoders on disk, so an unchanged model, layer, decoder settings and training images reuse the
 * decoder instead of training it again.
 *
 *   <dir>/<key>/model.json     tfjs Layers model (standardisation included, as the frozen layer "standardize")
 *   <dir>/<key>/weights.bin
 *   <dir>/<key>/decoder.json   format version, key, training info, standardisation, shapes, sha256 of both files
 *
 * Writes go to a temporary folder beside the entry and are renamed into place, so readers never see half an
 * entry; two processes saving the same key both succeed (the last rename wins; both decoders are equally valid).
 * loadDecoder returns null for anything missing, unreadable, from another format version, or whose files do not
 * match the hashes in decoder.json: a bad cache entry costs a retraining, never the analysis.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { saveLayersModel } from '../loaders/saveTfjs';
import type { DecoderSettings } from '../report';
import { DECODER_FORMAT_VERSION, wrapDecoder, type DecoderTrainingInfo, type ImageGeometry, type TrainedDecoder } from './decoder';

export interface DecoderKeyParts {
  modelSha256: string;
  layer: string;
  settings: DecoderSettings;
  /** hashImages() of the decoder's training images (in the order they are given to trainDecoder). */
  trainingPixelsHash: string;
  /** InputMapping.description: the same pixels in other model units are other features. */
  mappingDescription: string;
  height: number;
  width: number;
  channels: number;
  /**
   * The training seed. Optional: without it a decoder trained with any seed is reused (a cache hit then depends
   * on which seed trained first); with it, another seed trains its own decoder.
   */
  seed?: number;
  /** Noisy training: the typical noise std in [0,1] pixels (√(α·τ)), since the training pairs depend on it. */
  noiseStd?: number;
}

const KEY_LENGTH = 24; // hex characters (96 bits)

/** Cache key: sha256 over everything the trained decoder depends on, plus the decoder format version. */
export function decoderKey(p: DecoderKeyParts): string {
  const s = p.settings;
  // Fixed field order: the key must not depend on how the caller built its objects.
  const canonical = JSON.stringify([
    'infodiscard-decoder',
    DECODER_FORMAT_VERSION,
    p.modelSha256,
    p.layer,
    [s.blocks, s.width, s.maxEpochs, s.patience, s.batchSize, s.learningRate, s.holdout, s.training ?? 'clean'],
    p.noiseStd ?? null,
    p.trainingPixelsHash,
    p.mappingDescription,
    [p.height, p.width, p.channels],
    p.seed ?? null,
  ]);
  return createHash('sha256').update(canonical).digest('hex').slice(0, KEY_LENGTH);
}

/** sha256 (hex) over the images' count, lengths and float32 bytes, in order. */
export function hashImages(images: Float32Array[]): string {
  const hash = createHash('sha256');
  const header = new Uint32Array([images.length]);
  hash.update(new Uint8Array(header.buffer));
  for (const im of images) {
    hash.update(new Uint8Array(new Uint32Array([im.length]).buffer));
    hash.update(new Uint8Array(im.buffer, im.byteOffset, im.byteLength));
  }
  return hash.digest('hex');
}

interface DecoderMeta {
  format: 'infodiscard-decoder';
  formatVersion: number;
  key: string;
  info: DecoderTrainingInfo;
  standardization: { mean: number[]; std: number[] };
  featureShape: number[];
  image: ImageGeometry;
  sha256: { 'model.json': string; 'weights.bin': string };
  savedAt: string;
}

const sha256File = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

function checkKey(key: string): void {
  if (!/^[0-9a-f]{8,64}$/.test(key)) throw new Error(`not a decoder cache key: "${key}"`);
}

/**
 * Writes the decoder to <dir>/<key>/ (atomically: a temporary folder renamed into place) and returns that folder.
 * Throws on I/O errors (permissions, disk full): callers should log them and carry on without the cache.
 */
export async function saveDecoder(dir: string, key: string, trained: TrainedDecoder): Promise<string> {
  checkKey(key);
  mkdirSync(dir, { recursive: true });
  const target = path.join(dir, key);
  const tmp = path.join(dir, `.${key}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await saveLayersModel(trained.model, tmp);
    const meta: DecoderMeta = {
      format: 'infodiscard-decoder',
      formatVersion: DECODER_FORMAT_VERSION,
      key,
      info: trained.info,
      standardization: trained.standardization,
      featureShape: trained.featureShape,
      image: trained.image,
      sha256: { 'model.json': sha256File(path.join(tmp, 'model.json')), 'weights.bin': sha256File(path.join(tmp, 'weights.bin')) },
      savedAt: new Date().toISOString(),
    };
    writeFileSync(path.join(tmp, 'decoder.json'), JSON.stringify(meta, null, 1));
    try {
      renameSync(tmp, target);
    } catch {
      // An entry is already there (another process, or a corrupt one being replaced): move it aside, then retry.
      const old = path.join(dir, `.${key}.old-${process.pid}-${randomBytes(4).toString('hex')}`);
      if (existsSync(target)) renameSync(target, old);
      renameSync(tmp, target);
      rmSync(old, { recursive: true, force: true });
    }
    return target;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The cached decoder for `key`, or null when there is none or it cannot be trusted. */
export async function loadDecoder(dir: string, key: string): Promise<TrainedDecoder | null> {
  let model: tfl.LayersModel | null = null;
  try {
    checkKey(key);
    const folder = path.join(dir, key);
    if (!existsSync(path.join(folder, 'decoder.json'))) return null;
    const meta = JSON.parse(readFileSync(path.join(folder, 'decoder.json'), 'utf8')) as DecoderMeta;
    if (meta.format !== 'infodiscard-decoder' || meta.formatVersion !== DECODER_FORMAT_VERSION || meta.key !== key) return null;
    const modelBytes = readFileSync(path.join(folder, 'model.json'));
    const weightBytes = readFileSync(path.join(folder, 'weights.bin'));
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    if (sha(modelBytes) !== meta.sha256['model.json'] || sha(weightBytes) !== meta.sha256['weights.bin']) return null;
    const json = JSON.parse(modelBytes.toString('utf8')) as {
      modelTopology: object;
      weightsManifest: { weights: tf.io.WeightsManifestEntry[] }[];
    };
    const weightData = weightBytes.buffer.slice(weightBytes.byteOffset, weightBytes.byteOffset + weightBytes.byteLength);
    model = await tfl.loadLayersModel(
      tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData }),
    );
    const inShape = model.inputs[0].shape.slice(1);
    const outShape = model.outputs[0].shape.slice(1);
    const { height, width, channels } = meta.image;
    if (
      inShape.length !== meta.featureShape.length ||
      inShape.some((d, i) => d !== meta.featureShape[i]) ||
      outShape.join() !== [height, width, channels].join() ||
      !Number.isFinite(meta.info?.psnr)
    ) {
      model.dispose();
      return null;
    }
    return wrapDecoder(model, meta.info, meta.standardization, meta.featureShape, meta.image);
  } catch {
    model?.dispose();
    return null;
  }
}
