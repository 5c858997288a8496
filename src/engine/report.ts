/**
 * The report: what one analysis produced, as written to JSON. Versioned; documented in docs/report-schema.md.
 * Pure data: no tfjs, no vscode. The CLI, the worker, the extension and the webview all read this shape.
 */

export const SCHEMA_VERSION = 3;

/** What an analysis measures. SID always runs (concentration is read off its maps); the rest are opt-in. */
export type MetricName = 'sid' | 'ru' | 'concentration' | 'baselines';
export const METRIC_NAMES: readonly MetricName[] = ['sid', 'ru', 'concentration', 'baselines'];

export type BackendName = 'tensorflow' | 'webgpu' | 'wasm' | 'cpu';

/**
 * The WebGPU adapter a process ran on (`run.processes[].adapter`, `run.gpu`), as the adapter describes itself:
 * vendor, architecture, device and description are whatever the driver reports (any may be empty). `software`: a
 * CPU rasteriser (llvmpipe, lavapipe, SwiftShader, a fallback adapter), only used when INFODISCARD_WEBGPU_ALLOW_SOFTWARE=1.
 */
export interface GpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  software: boolean;
}
export type ModelFormat = 'tfjs-layers' | 'tfjs-graph' | 'keras-h5' | 'keras-v3' | 'keras-json' | 'onnx' | 'tf-saved-model';

/** How [0,1] pixels become model inputs: model = pixel * scale[c] + offset[c], per channel. */
export interface InputMapping {
  /** Human-readable form, as given: "range 0,1" or "normalize 0.485,0.456,0.406/0.229,0.224,0.225". */
  description: string;
  scale: number[];
  offset: number[];
  /** Schema 3: 'bgr' when the model reads the image's channels reversed (scale/offset are in model order). Absent = rgb. */
  channelOrder?: 'rgb' | 'bgr';
}

/**
 * Schema 3: whether a per-image number is a measurement. `ok`: the constraint holds (ratio within ±5 % of α
 * beyond its standard error) and the search converged; `ratio-off`: the achieved ratio is outside that band;
 * `saturated`: more than SATURATION_SHARE of the σ sit at σ_max and the ratio is below α, so the value is a lower
 * bound (shown with "≥"); `not-converged`: the search hit maxSteps without the constraint settling;
 * `at-bound` (RU only): the reconstruction error sits at what the image range allows, also a lower bound.
 */
export type QualityVerdict = 'ok' | 'ratio-off' | 'saturated' | 'not-converged' | 'at-bound';

export interface Quality {
  verdict: QualityVerdict;
  /** One line for people: what is wrong and what to try. Absent when ok. */
  reason?: string;
  /** True when the value is a lower bound (saturated, at-bound): readers print "≥" before it. */
  bound?: boolean;
}

/** Per-layer roll-up of the per-image verdicts: the worst one, and how many images had each. */
export interface LayerQuality {
  verdict: QualityVerdict;
  counts: Partial<Record<QualityVerdict, number>>;
  reason?: string;
}

/** How an image file becomes the model's H x W input (schema 3; absent = stretch, as schemas 1-2 did). */
export type ResizeMode = 'stretch' | 'center-crop' | 'letterbox';

/** What happens to an alpha channel (schema 3; absent = composite over black, as schemas 1-2 did). */
export interface AlphaHandling {
  mode: 'composite' | 'drop';
  /** The colour composited under transparent pixels, [0,1] RGB (mode composite). */
  background?: [number, number, number];
}

/**
 * A model's preprocessing profile (issue: a user's own model): how [0,1] pixels are turned into what the model
 * expects, stored beside the reports so the CLI and the extension share it. Schema 3: settings.preprocessing.
 */
export interface PreprocessingProfile {
  /** A preset's name when it is one ('[0,1]', '[0,255]', '[-1,1]', 'imagenet', 'caffe-bgr'), else 'custom'. */
  preset: string;
  inputRange: [number, number] | null;
  normalize: { mean: number[]; std: number[] } | null;
  channelOrder: 'rgb' | 'bgr';
  resize: ResizeMode;
  alpha: AlphaHandling;
  /** Where the profile came from: 'detected: Rescaling layer "rescaling"', 'user', 'cli', 'default', 'manifest'. */
  source: string;
}

export interface AnalysisSettings {
  alpha: number;
  /** Variance of the pixel noise used to normalise the feature change (delta_f^2), in [0,1]-pixel units. */
  tau: number;
  /** Noise samples per optimisation step (K). */
  samples: number;
  maxSteps: number;
  /** Steps before the search may stop early; absent = the engine's default (30, or 20 for a warm start). */
  minSteps?: number;
  seed: number;
  backend: BackendName;
  inputRange: [number, number] | null;
  normalize: { mean: number[]; std: number[] } | null;
  /** N for an N x N grid of sigmas upsampled to the image; null = one sigma per pixel. */
  sigmaGrid: number | null;
  sigmaMax: number;
  learningRate: number;
  /** Schema 2. Absent in schema-1 reports, which measured SID only. */
  metrics?: MetricName[];
  /** The RU decoders' architecture and training, when `metrics` includes ru. */
  decoder?: DecoderSettings | null;
  /**
   * Schema 2: SID maps are the first-order preview (Jacobian column norms, one level fit; src/engine/preview.ts),
   * an approximation in seconds rather than the optimised result. Per image, stopReason is then 'preview'.
   */
  preview?: boolean;
  /** Schema 2: the SID search started from the first-order preview instead of a flat sigma. */
  warmStart?: boolean;
  /**
   * Noise samples per forward/backward pass of the search, to bound memory; absent = chosen per layer to fit
   * src/engine/sampleBatch.ts's budget (all K when they fit). Same answer up to rounding either way.
   */
  sampleBatch?: number;
  /**
   * Schema 3: analyse an output layer's softmax probabilities as they are. Absent or false: its pre-softmax scores
   * (logits) where the loader finds them, recorded per layer in `feature` (CLI --output-softmax).
   */
  outputSoftmax?: boolean;
  /** Schema 3: the preprocessing profile the images went through (inputRange/normalize above repeat its mapping). */
  preprocessing?: PreprocessingProfile;
}

/** Decoder g (paper Sec. 3.2 and 4): residual blocks, the first ones upsampling x2 on two transposed-conv tracks. */
export interface DecoderSettings {
  /** Residual blocks in all (the paper: 6). Upsampling blocks come first, as many as the layer's stride needs. */
  blocks: number;
  /** Channels of every block. */
  width: number;
  /** Training: epochs at most, stopped earlier when the held-out loss plateaus for `patience` epochs. */
  maxEpochs: number;
  patience: number;
  batchSize: number;
  learningRate: number;
  /** Fraction of the training images held out to measure PSNR (at least one image). */
  holdout: number;
  /**
   * Schema 3: what the decoder is trained on. 'noisy' (the default): pairs (x', h(x')) of the clean training images
   * and noisy copies x' = x + s·δ at the noise scales the RU search uses (the paper's decoder loss ||x' − x̂'||²), so
   * g is trained where it is evaluated; 'clean': clean images only (schema 2's decoders). Absent = 'clean'.
   */
  training?: 'clean' | 'noisy';
}

/** The object region Λ of one image (for concentration), in the original image's pixel coordinates. */
export interface ObjectRegion {
  /** [x, y, width, height] in original-image pixels. */
  bbox?: [number, number, number, number];
  /** A mask PNG (non-zero = object), resized like the image. */
  mask?: string;
  /** Where it came from: a sidecar JSON, CLI flags, or a box drawn in the panel. */
  source: 'boxes-file' | 'cli' | 'panel';
}

export interface ImageInfo {
  /** Path as given (relative paths stay relative to the working directory of the run). */
  path: string;
  /** Original size before fitting to the model's input (upright: after the EXIF orientation, schema 3). */
  width: number;
  height: number;
  /** The image as the model saw it, [0,1] pixels, row-major H x W x C, rounded to 3 decimals: for heatmap overlays. */
  pixels: number[];
  channels: number;
  /** Schema 2: the object region, when one was given. */
  region?: ObjectRegion;
  /** Schema 2: the region as the model sees it: H rows x W columns of 0/1 at the model's input size. */
  regionMask?: number[][];
  /**
   * Schema 3: how the file was fitted to the model's input (src/engine/geometry.ts). `crop`: the part the model saw,
   * [x, y, w, h] in original-image pixels (upright, after `exifOrientation`); `alpha`: 'none' when the file had no
   * transparency; `background`: the colour composited under it, [0,1] RGB; `pad`: letterbox padding, [0,1] RGB.
   */
  geometry?: {
    resize: ResizeMode;
    crop?: [number, number, number, number];
    exifOrientation?: number;
    alpha?: 'none' | 'composited' | 'dropped';
    background?: [number, number, number];
    pad?: [number, number, number];
  };
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
  /** Why optimisation stopped: converged (constraint holds, entropy flat) or maxSteps; 'preview': not optimised. */
  stopReason: 'converged' | 'maxSteps' | 'preview';
  /** Schema 3: is sidMean a measurement (see Quality)? Absent in older reports: treat as unknown. */
  quality?: Quality;
  /** Schema 2, metrics ru: pixel RU (the mean over channels of Ĥ_i = ½·log E[(x_i − x̂'_i)²] + C), nats, H x W. */
  ruMap?: number[][];
  /** Mean over all n input units of Ĥ_i for this image. */
  ruMean?: number;
  /** The RU optimisation's own constraint check, multiplier and steps (it learns its own σ, paper Eq. 12). */
  ru?: {
    constraintRatio: number;
    constraintRatioSe: number;
    lambda: number;
    steps: number;
    stopReason: 'converged' | 'maxSteps';
    seconds: number;
    /**
     * Schema 3: share of input units whose RMS reconstruction error is at least 90 % of the largest the [0,1] range
     * allows (max(x_i, 1 − x_i)); the RU of those units is a lower bound.
     */
    atBound?: number;
    /** Schema 3: the RU value's quality (at-bound: the reconstruction error sits at the image range's limit). */
    quality?: Quality;
  };
  /** Held-out PSNR (dB, [0,1] pixels) of this layer's decoder; repeated per image for readers of one image. */
  decoderPsnr?: number;
  /** Schema 2, metrics concentration: mean SID outside the object minus inside (Eq. 7); null without a region. */
  concentration?: number | null;
  /** Schema 2, metrics baselines: maps at the image size (upsampled), for the class `targetClass`. */
  baselines?: BaselineMaps;
}

export interface BaselineMaps {
  /** The output unit y whose score is explained (the top prediction unless one was chosen). */
  targetClass: number;
  /** sqrt(sum_c (dy/df_ijc)^2), upsampled bilinearly to H x W. */
  gradNorm: number[][];
  /** ReLU(sum_c a_c f_ijc), a_c = mean_ij dy/df_ijc; null for a layer without a spatial map. */
  gradCam: number[][] | null;
  /** sum_c w_cy f_ijc at the global-average-pooling input of a GAP + dense head; null elsewhere. */
  cam: number[][] | null;
  /** Schema 3, optional: why Grad-CAM/CAM are null, or how a token feature was mapped to the image. */
  note?: string;
  /** Magnitudes for the across-layer chart: the mean of each map before upsampling (null where the map is). */
  magnitude: { gradNorm: number; gradCam: number | null; cam: number | null };
}

export interface DecoderInfo {
  /** Cache key: model hash + layer + decoder settings + training images. */
  key: string;
  /** Mean held-out PSNR (dB); below 15 dB the RU of this layer says more about the decoder than the layer. */
  psnr: number;
  trainLoss: number;
  heldOutLoss: number;
  epochs: number;
  trainImages: number;
  heldOutImages: number;
  /** True when the decoder came from the cache instead of being trained in this run. */
  cached: boolean;
  seconds: number;
  /**
   * Schema 3: the output head. 'clamp': x̂ = clip(z, 0, 1), inside the [0,1] pixel range (trained with a
   * straight-through gradient), so no pixel's reconstruction error can exceed what the range allows; absent =
   * 'linear' (unbounded, schema 2).
   */
  output?: 'clamp' | 'linear';
  /** Schema 3: what it was trained on: clean features only, or clean and noisy (x + σ∘δ) ones. Absent = 'clean'. */
  training?: 'clean' | 'noisy';
}

/** Mean, total and spread of a per-pixel metric across images, in nats (as `sid`). */
export interface MetricSummary {
  mean: number;
  total: number;
  std: number;
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
  /** Schema 2, metrics ru: Reconstruction Uncertainty (paper Sec. 3.2) in the units of `sid`. */
  ru?: MetricSummary & { decoder: DecoderInfo };
  /** Schema 2, metrics concentration: over the images that have a region. */
  concentration?: { mean: number; std: number; images: number } | null;
  /** Schema 2, metrics baselines: mean and spread across images of each map's magnitude. */
  baselines?: {
    gradNorm: { mean: number; std: number };
    gradCam: { mean: number; std: number } | null;
    cam: { mean: number; std: number } | null;
  };
  perImage: PerImageResult[];
  /** Schema 3: roll-up of perImage[].quality (SID) and, with RU, of perImage[].ru.quality. */
  quality?: LayerQuality;
  ruQuality?: LayerQuality;
  /** Schema 3: this layer was taken from an earlier report at the same output (resume), not computed in this run. */
  reused?: boolean;
  /** Schema 3: what was analysed when it is not the layer's raw output, e.g. 'logits' (the pre-softmax scores of an output layer). */
  feature?: { kind: 'logits' | 'output'; note?: string };
  /**
   * What ran the SID search's noisy passes when it was not (only) the tfjs backend of settings.backend:
   * "onnxruntime 1.30.0 (cpu, 1 thread)" for an ONNX model on onnxruntime (src/engine/native/), or, where that was
   * tried and could not be used, "tfjs wasm (onnxruntime not used: <reason>)". Absent: the tfjs backend.
   */
  runtime?: string;
}

/** Schema 3: a requested layer that was not analysed, and why (the run goes on without it). */
export interface SkippedLayer {
  name: string;
  reason: string;
}

/** 'partial': merged from the parts of a sharded analysis with some shards missing (see `shards`). */
export type ReportStatus = 'running' | 'complete' | 'failed' | 'cancelled' | 'partial';

/** Where the run's time and memory went: what the user waited for, and what it cost the machine. */
export interface RunStats {
  /** Seconds from the start until the first layer had every image done (what the panel's first chart waits for). */
  firstLayerSeconds?: number;
  /** Each process that analysed: its id and peak resident memory (MB, the OS's maxRSS). One entry in a single-process run. */
  processes: { pid: number; peakRssMB: number; backend?: BackendName; adapter?: GpuAdapter }[];
  /** The WebGPU adapter that ran some of the layers (absent when none ran on webgpu); per process in `processes`. */
  gpu?: GpuAdapter;
}

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
  /** Time to the first finished layer and peak memory per process (absent in older reports). */
  run?: RunStats;
  /** Schema 3: requested layers that were skipped, with the reason (δ_f² = 0, not differentiable, ...). */
  skippedLayers?: SkippedLayer[];
  /** Merged from the parts of a sharded analysis (infodiscard merge): N, and the shards (0-based) that were missing. */
  shards?: { count: number; missing: number[] };
}

/** Below this held-out PSNR (dB) of its decoder a layer's RU is flagged: the decoder, not the layer, dominates it. */
export const POOR_DECODER_PSNR = 15;

/** One line for logs and the panel: "nvidia ampere (NVIDIA GeForce RTX 3080, …)", "software: llvmpipe …". */
export function adapterLabel(a: GpuAdapter): string {
  const name = [a.vendor, a.architecture].filter(Boolean).join(' ');
  const detail = [a.device, a.description].filter(Boolean).join(', ');
  const text = name && detail ? `${name} (${detail})` : name || detail || 'unnamed adapter';
  return a.software ? `software: ${text}` : text;
}

/**
 * What ran the analysis, for the panel's header: the backend, "webgpu + wasm" when a worker pool ran layers on the
 * GPU and on wasm beside it, "+ onnxruntime" when some layers' passes ran there (layers[].runtime), and the adapter
 * (null when no GPU ran). Old reports: settings.backend as it is.
 */
export function backendSummary(report: Pick<Report, 'settings' | 'run'> & { layers?: Pick<LayerResult, 'runtime'>[] }): { backend: string; adapter: string | null } {
  const gpu = report.run?.gpu;
  const backends = [...new Set((report.run?.processes ?? []).flatMap((p) => (p.backend ? [p.backend] : [])))];
  const backend = backends.length > 1 ? backends.sort((a, b) => (a === 'webgpu' ? -1 : b === 'webgpu' ? 1 : a.localeCompare(b))).join(' + ') : String(report.settings?.backend ?? '—');
  const native = (report.layers ?? []).some((l) => l.runtime?.startsWith('onnxruntime'));
  return { backend: native ? `${backend} + onnxruntime` : backend, adapter: gpu && typeof gpu === 'object' ? adapterLabel(gpu) : null };
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
