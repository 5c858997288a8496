/**
 * What every per-layer metric needs (the model, the layer's probe, the images at the model's input size, the
 * settings) and the two things they share: the options of the sigma search (SID and RU search alike) and the
 * report's rounded H x W maps.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { EventSink } from './events';
import type { PreparedImage } from './images';
import type { LoadedModel } from './loaders';
import type { AnalysisSettings, InputMapping } from './report';
import type { SampleShare } from './sampleShare';
import type { SidOptions } from './sid';

export interface LayerJob {
  model: LoadedModel;
  /** Layer name and its position among the model's layers (seeds derive from it). */
  name: string;
  index: number;
  probe: (x: tf.Tensor4D) => tf.Tensor;
  images: PreparedImage[];
  height: number;
  width: number;
  channels: number;
  mapping: InputMapping;
  settings: AnalysisSettings;
  /** Noise samples per pass of the search (settings.sampleBatch, or chosen for this layer; see sampleBatch.ts). */
  sampleBatch?: number;
  /** This process's share of the noise samples when a team of processes runs the layer (sampleShare.ts). */
  share?: SampleShare;
  signal?: AbortSignal;
  emit: EventSink;
}

/** The sigma search's options from the analysis settings, for one (layer, image) problem. */
export function searchOptions(job: LayerJob, seed: number, onStep: SidOptions['onStep']): SidOptions {
  const s = job.settings;
  return {
    alpha: s.alpha,
    tau: s.tau,
    samples: s.samples,
    maxSteps: s.maxSteps,
    ...(s.minSteps !== undefined ? { minSteps: s.minSteps } : {}),
    sigmaMax: s.sigmaMax,
    sigmaGrid: s.sigmaGrid,
    learningRate: s.learningRate,
    ...(job.sampleBatch !== undefined ? { sampleBatch: job.sampleBatch } : {}),
    ...(job.share ? { share: job.share } : {}),
    seed,
    signal: job.signal,
    onStep,
  };
}

/** A flat H*W map as the report's H rows of W values, rounded to 4 decimals. */
export function mapRows(map: Float32Array, height: number, width: number): number[][] {
  return Array.from({ length: height }, (_, y) => Array.from(map.subarray(y * width, (y + 1) * width), (h) => Math.round(h * 1e4) / 1e4));
}
