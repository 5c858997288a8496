/**
 * The report: what one analysis produced, as written to JSON. Versioned; documented in docs/report-schema.md.
 * Pure data: no tfjs, no vscode. The CLI, the worker, the extension and the webview all read this shape.
 */

export const SCHEMA_VERSION = 1;

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type ModelFormat = 'tfjs-layers' | 'tfjs-graph' | 'keras-h5' | 'keras-v3' | 'onnx' | 'tf-saved-model';

/** How [0,1] pixels become model inputs: model = pixel * scale[c] + offset[c], per channel. */
export interface InputMapping {
  /** Human-readable form, as given: "range 0,1" or "normalize 0.485,0.456,0.406/0.229,0.224,0.225". */
  description: string;
  scale: number[];
  offset: number[];
}

export interface AnalysisSettings {
  alpha: number;
  /** Variance of the pixel noise used to normalise the feature change (delta_f^2), in [0,1]-pixel units. */
  tau: number;
  /** Noise samples per optimisation step (K). */
  samples: number;
  maxSteps: number;
  seed: number;
  backend: BackendName;
  inputRange: [number, number] | null;
  normalize: { mean: number[]; std: number[] } | null;
  /** N for an N x N grid of sigmas upsampled to the image; null = one sigma per pixel. */
  sigmaGrid: number | null;
  sigmaMax: number;
  learningRate: number;
}

export interface ImageInfo {
  /** Path as given (relative paths stay relative to the working directory of the run). */
  path: string;
  /** Original size before resizing to the model's input. */
  width: number;
  height: number;
  /** The image as the model saw it, [0,1] pixels, row-major H x W x C, rounded to 3 decimals: for heatmap overlays. */
  pixels: number[];
  channels: number;
}

export interface PerImageResult {
  /** Index into report.images. */
  image: number;
  /** Mean pixel SID over the image, nats per pixel. */
  sidMean: number;
  /** Pixel SID H_i = log(sigma_i) + 0.5*log(2*pi*e), nats, H rows of W values. */
  map: number[][];
  /** E||h(x') - f||^2 / delta_f^2 measured on fresh noise at the end; should be alpha within 5 %. */
  constraintRatio: number;
  /** Standard error of constraintRatio. */
  constraintRatioSe: number;
  /** Lagrange multiplier in the paper's convention (Loss = ratio - lambda * sum_i H_i), from stationarity. */
  lambda: number;
  steps: number;
  /** Pixels whose sigma reached sigmaMax (the layer ignores them). */
  saturated: number;
  seconds: number;
  /** delta_f^2 = E_{x' ~ N(x, tau I)} ||h(x') - f||^2, in the layer's output units. */
  deltaF2: number;
  /** Relative standard error of deltaF2 (target < 0.02). */
  deltaF2RelSe: number;
  /** Why optimisation stopped: converged (constraint holds, entropy flat) or maxSteps. */
  stopReason: 'converged' | 'maxSteps';
}

export interface LayerResult {
  name: string;
  /** Class name (Conv2D) or graph op (Conv2D, Relu, ...). */
  kind: string;
  /** Output shape without the batch dimension. */
  outputShape: (number | null)[];
  sid: {
    /** Mean over images of the per-image mean pixel SID (nats per pixel). */
    mean: number;
    /** Mean over images of the total SID: entropy of the whole input, sum over all n = H*W*C input units (nats). */
    total: number;
    /** Standard deviation across images of the per-image mean (0 for one image). */
    std: number;
  };
  perImage: PerImageResult[];
}

export type ReportStatus = 'running' | 'complete' | 'failed' | 'cancelled';

export interface Report {
  schemaVersion: number;
  tool: { name: 'infodiscard'; version: string };
  createdAt: string;
  status: ReportStatus;
  /** Set when status is failed: the one-line user-facing reason. */
  error?: string;
  model: {
    path: string;
    format: ModelFormat;
    sha256: string;
    inputShape: (number | null)[];
  };
  settings: AnalysisSettings;
  images: ImageInfo[];
  /** Layers in model order, as they finish. */
  layers: LayerResult[];
  /** Layers that were requested, in order (so a partial report shows what is missing). */
  requestedLayers: string[];
  seconds: number;
}

/** Pixel-SID constant C = 0.5 * log(2*pi*e). */
export const GAUSSIAN_ENTROPY_CONSTANT = 0.5 * Math.log(2 * Math.PI * Math.E);

export function meanStd(values: number[]): { mean: number; std: number } {
  const n = values.length;
  if (n === 0) return { mean: NaN, std: NaN };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = n > 1 ? values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance) };
}
