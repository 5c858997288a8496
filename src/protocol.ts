/**
 * Every message between the extension host, the analysis worker process and the report webview, declared once.
 * Worker channel: Node IPC (child_process.fork, process.send). Webview channel: webview.postMessage.
 * Data flows one way: engine events -> worker -> extension -> webview; only requests and cancels flow back.
 */
import type { BackendChoice } from './engine/backend';
import type { CoherencyPhase, CoherencySummary, OutputCheck } from './engine/coherency';
import type { AnalysisEvent } from './engine/events';
import type { ImageOptions } from './engine/geometry';
import type { RescaledPair } from './engine/loaders/types';
import type { BackendName, ModelFormat, ObjectRegion, PreprocessingProfile, Report } from './engine/report';
import type { PreprocessingCheck } from './engine/preprocessing/check';
import type { SettingsInput } from './engine/settings';
import type { NativeChoice } from './engine/native/choice';

// ---------------------------------------------------------------------------------------------------------------
// Extension -> worker

export interface AnalyzeParams {
  modelPath: string;
  /** Keras to_json models: the weights file (default: the same-stem .h5 / .weights.h5 beside the JSON). */
  weightsPath?: string;
  /** Image files or folders. */
  images: string[];
  /** Layers to analyse; all when omitted. */
  layers?: string[];
  settings: SettingsInput;
  inputSize?: [number, number];
  /** How image files are fitted to the model input (resize mode, alpha, letterbox padding); engine defaults when absent. */
  imageOptions?: ImageOptions;
  /** Where the worker writes the report after every layer (so it survives a crash of the worker). */
  reportPath: string;
  /** RU: more images (files or folders) for the decoders' training; cached decoders live in decoderCacheDir. */
  trainImages?: string[];
  decoderCacheDir?: string;
  /** Concentration: a sidecar JSON of object regions, and/or one region for the images it leaves out. */
  boxesFile?: string;
  defaultRegion?: ObjectRegion;
  /** Baselines: the output unit to explain (default: each image's top prediction). */
  targetClass?: number;
  /** Analyse only these of the images (indices into the collected list); the parallel runner's image groups. */
  imageIndices?: number[];
  /** The whole analysis's layers when this job analyses part of them (BatchNorm folding must not depend on the split). */
  analysedLayers?: string[];
  /**
   * Resume (default on): take over the layers that the report at `resumeFrom` (default `reportPath`) already has for
   * this model, settings and images (engine/resume.ts); false recomputes every layer.
   */
  resume?: boolean;
  /** 'off': ONNX layers stay on tfjs instead of onnxruntime (engine AnalyzeRequest.native; CLI --native, infodiscard.native). */
  native?: NativeChoice;
  resumeFrom?: string;
  /**
   * Set by the worker pool, not by callers: false when another worker holds the GPU (one GPU job at a time per
   * device), so `webgpu` and `auto` run on wasm in this worker. Absent = may use the GPU.
   */
  gpu?: boolean;
  /**
   * Set by the worker pool, not by callers: this worker is member `member` of a team of `members` workers that run
   * the same request, each on its share of every layer's noise samples (src/engine/sampleShare.ts); the sums travel
   * as 'reduce' / 'reduced' messages. Member 0's report is the analysis's.
   */
  team?: { member: number; members: number };
}

/** List a model's probe-able layers (for pickers): answered by a 'layers' message. */
export interface LayersParams {
  modelPath: string;
  /** Keras to_json models: the weights file (as in AnalyzeParams). */
  weightsPath?: string;
  /** Backend to load the model with (default 'auto'). */
  backend?: BackendChoice;
  /**
   * Whether to find out which conv layers the coherency check can rescale (a trial rescale of each; default true).
   * The parallel runner only needs the names.
   */
  checkRescale?: boolean;
  /** Set by the worker pool: as AnalyzeParams.gpu. */
  gpu?: boolean;
}

/**
 * The coherency check (engine checkCoherency): rescale conv layer `first` (kernel and bias / factor) and the next
 * conv/dense layer (kernel x factor), analyse the original and the rescaled model with the same settings and seed,
 * compare. The worker writes nothing until both runs are done; then the result JSON (both reports included) to
 * `resultPath` and each report on its own to `originalReportPath` / `rescaledReportPath` (for the panel).
 * settings.metrics decides what is compared (SID always; RU; baselines for gradient magnitudes).
 */
export interface CoherencyParams extends Omit<AnalyzeParams, 'reportPath' | 'team'> {
  /** The conv layer L to scale down. */
  first: string;
  /** k (the paper's is 4). */
  factor: number;
  resultPath: string;
  originalReportPath: string;
  rescaledReportPath: string;
}

/** Which of the coherency check's two analyses an event belongs to. */
export type CoherencyRun = 'original' | 'rescaled';

export type { CoherencyPhase };

/** One probe-able layer of a model, as 'layers' lists it. */
export interface ModelLayer {
  name: string;
  /** Layer class (Conv2D) or graph/ONNX op. */
  kind: string;
  /** Output shape without the batch dimension (null where unknown). */
  outputShape: (number | null)[];
  /** A convolution (a candidate for the coherency check's `first`). */
  conv: boolean;
  /** In the recommended layer set (a block output: engine/recommendedLayers.ts), with why ("end of the 14x14 stage"). */
  recommended?: boolean;
  why?: string;
  /** The block it belongs to: the name of the recommended layer that closes it (the layer picker's groups). */
  block?: string;
  /** A token sequence [tokens, dim] with a declared patch grid (ViT: class token + patches), for its shape text. */
  tokenGrid?: { skip: number; height: number; width: number };
  /** For a conv layer the coherency check can rescale: the layer scaled up with it and the outputs between. */
  rescale?: Omit<RescaledPair, 'first'>;
  /** For a conv layer it cannot rescale: why, one line (without the model path). */
  notRescalable?: string;
}

export interface ModelLayers {
  modelPath: string;
  format: ModelFormat;
  input: { height: number | null; width: number | null; channels: number };
  layers: ModelLayer[];
  /** The backend the worker listed the layers on (the pool's teams run on wasm and cpu only). */
  backend?: BackendName;
  /** Set when the model's format cannot have its weights changed in memory (no layer is rescalable): why, one line. */
  rescaleUnsupported?: string;
}

/**
 * The preprocessing check (engine checkPreprocessing): the model's outputs on (at most 16 of) the images at `profile`
 * (default: what the model file says, else [0,1]) and at the alternatives ([0,1], 0-255, [-1,1], ImageNet), with the
 * top predictions of each, and the profile recommended when the chosen one is degenerate and another is not.
 */
export interface PreprocessingParams {
  modelPath: string;
  images: string[];
  profile?: PreprocessingProfile;
  /** More profiles to try besides the standard alternatives (a stored one, a custom entry). */
  alternatives?: PreprocessingProfile[];
  inputSize?: [number, number];
  backend?: BackendChoice;
}

export interface PreprocessingOutcome {
  /** What the model file says (Rescaling layer, ONNX metadata, torchvision stem, graph signature); null: nothing. */
  detected: PreprocessingProfile | null;
  check: PreprocessingCheck;
}

/** What the extension needs of a finished coherency check (the whole result is in the JSON file). */
export interface CoherencyOutcome {
  rescale: RescaledPair & { factor: number };
  outputCheck: OutputCheck;
  summary: CoherencySummary[];
  /** The output is unchanged and SID (and RU) are unchanged at every layer. */
  coherent: boolean;
  seconds: number;
  /** The engine's formatCoherencyTable (the extension bundle holds no engine code that needs TensorFlow.js). */
  table: string;
}

export type ToWorker =
  /** Start an analysis. `id` is chosen by the extension and names every message about this analysis. */
  | { kind: 'analyze'; id: number; params: AnalyzeParams }
  /** List a model's layers; `id` as for analyses. Answered by a 'layers' message (or 'failed'). */
  | { kind: 'layers'; id: number; params: LayersParams }
  /** Start a coherency check; `id` as for analyses. Ends with 'coherencyFinished' (or 'failed'). */
  | { kind: 'coherency'; id: number; params: CoherencyParams }
  /** Check a preprocessing profile (and detect one); answered by a 'preprocessing' message (or 'failed'). */
  | { kind: 'checkPreprocessing'; id: number; params: PreprocessingParams }
  /**
   * Stop request `id`: an analysis at the next optimisation step (the finished layers stay in the report); a
   * coherency check likewise (nothing is written); a queued request before it starts.
   */
  | { kind: 'cancel'; id: number }
  /** Finish and exit (the process also exits when its IPC channel closes). */
  | { kind: 'shutdown' }
  /** A team's sum for round `round` of analysis `id`'s 'reduce' messages (AnalyzeParams.team; encodeFloats). */
  | { kind: 'reduced'; id: number; round: number; values: string };

// ---------------------------------------------------------------------------------------------------------------
// Worker -> extension

export type WorkerErrorCode =
  /** Bad input (file, option, layer): `message` is one line for the user, naming the file and what to do. */
  | 'user'
  /** A bug or an environment failure: `message` is one line; `detail` may hold a stack for the log. */
  | 'internal';

export type FromWorker =
  /** Sent once the worker is up and can take requests. */
  | { kind: 'ready'; pid: number }
  /**
   * Engine progress for analysis (or coherency check) `id`. `step` events are throttled by the worker (at most ~10
   * per second). `run`: for a coherency check, which of its two analyses the event is about (absent for analyses).
   */
  | { kind: 'event'; id: number; event: AnalysisEvent; run?: CoherencyRun }
  /** Coherency check `id` entered a phase: the numerical check of the rescale, then the two analyses. */
  | { kind: 'coherencyPhase'; id: number; phase: CoherencyPhase }
  /** The answer to a 'layers' request (cancelled: it was cancelled before it ran). */
  | { kind: 'layers'; id: number; status: 'complete'; model: ModelLayers }
  | { kind: 'layers'; id: number; status: 'cancelled' }
  /** Coherency check `id` ended: complete (the three files are written) or cancelled (nothing written). */
  | { kind: 'coherencyFinished'; id: number; status: 'complete'; resultPath: string; originalReportPath: string; rescaledReportPath: string; outcome: CoherencyOutcome }
  | { kind: 'coherencyFinished'; id: number; status: 'cancelled' }
  /** The answer to a 'checkPreprocessing' request. */
  | { kind: 'preprocessing'; id: number; status: 'complete'; outcome: PreprocessingOutcome }
  | { kind: 'preprocessing'; id: number; status: 'cancelled' }
  /** Analysis `id` ended: complete or cancelled; the report is at `reportPath`. */
  | { kind: 'finished'; id: number; status: 'complete' | 'cancelled'; reportPath: string }
  /**
   * Request `id` failed. For an analysis, layers finished before the failure are in the report at `reportPath`, if
   * any; a 'layers' request or a coherency check has no such file.
   */
  | { kind: 'failed'; id: number; code: WorkerErrorCode; message: string; detail?: string; reportPath?: string }
  /**
   * A team member's partial sums for round `round` (counted from 0 per analysis) of analysis `id`: the pool adds
   * the team's arrays up in member order and answers every member with 'reduced'.
   */
  | { kind: 'reduce'; id: number; round: number; values: string };

/** Float64 values as base64 (IPC is JSON): exact, and about 11 characters a value. */
export function encodeFloats(values: Float64Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

export function decodeFloats(text: string): Float64Array {
  const bytes = Buffer.from(text, 'base64');
  const out = new Float64Array(bytes.length / 8);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Extension -> webview

export interface ReportSeries {
  /** Legend label: the model's file name, a checkpoint name ... (untrusted text). */
  label: string;
  report: Report;
  /** The report file (absolute path): the webview echoes it in 'setRegion' so the extension knows what to update. */
  source?: string;
  /**
   * Runs of one variant (issue 17): series with the same `group` are one model trained with different seeds, drawn
   * as ONE series with mean ± SD across runs (without a group, names differing only by a seed suffix group alike).
   */
  group?: string;
  /** The training seed of this series' model, when known. */
  seed?: number;
}

/** A report file a panel shows, and its legend label. */
export interface ReportSource {
  /** Absolute path of the report JSON. */
  path: string;
  label: string;
  /** Compare Checkpoints: the checkpoint's x on the epoch chart (its epoch, or its place in name order). */
  epoch?: number;
  /** Its variant group and training seed (ReportSeries.group / seed), e.g. an example family's seed runs. */
  group?: string;
  seed?: number;
}

/** What a Compare Checkpoints panel charts against epoch (every one of its sources has an `epoch`). */
export interface CheckpointsView {
  /** The folder of checkpoints (absolute path; its name titles the panel). */
  folder: string;
  /** 'epoch': x is the epoch read from each checkpoint's name; 'order': no name had one, x is the place in name order. */
  axis: 'epoch' | 'order';
}

/** One checkpoint of a 'compareEpochs' message: its report and its x on the epoch chart. */
export interface EpochSeries extends ReportSeries {
  epoch: number;
}

/**
 * Which reports a panel shows. Opaque to the webview: it keeps it in its own state (vscode.setState), and the
 * extension's WebviewPanelSerializer reads it back to reopen the same reports after a window reload.
 */
export interface PanelState {
  sources: ReportSource[];
  /** Set for a Compare Checkpoints panel. */
  checkpoints?: CheckpointsView;
}

/** What the webview saves with vscode.setState (and VS Code hands to the serializer on restore). */
export interface WebviewSavedState {
  panel?: PanelState;
  layer?: string | null;
  image?: number;
  opacity?: number;
  /** Which compared report the heatmaps and table show. */
  seriesIndex?: number;
}

export type ToWebview =
  /** Show one report (partial while `report.status` is 'running'); re-sent as layers finish. `source`: its file. */
  | { type: 'report'; report: Report; source?: string }
  /** Compare several reports: the chart shows one series each; heatmaps show the first. */
  | { type: 'compare'; series: ReportSeries[] }
  /**
   * Compare the checkpoints of a run: as 'compare' (one series per checkpoint, in epoch order, for the reports
   * loaded so far), plus a chart of SID (and RU) per layer against epoch. `epochs`: the x of every checkpoint of the
   * panel, analysed or not yet, so the axis spans the whole run while it fills in.
   */
  | { type: 'compareEpochs'; series: EpochSeries[]; view: CheckpointsView; epochs: number[] }
  /** Select a layer (from a hover's "open in panel" link). */
  | { type: 'selectLayer'; layer: string }
  /** Sent first after every 'ready': the panel's restore state, for the webview to keep with its own. */
  | { type: 'panelState'; state: PanelState };

// ---------------------------------------------------------------------------------------------------------------
// Webview -> extension

export type FromWebview =
  /** The webview listens now; the extension sends its state only after this. */
  | { type: 'ready' }
  /** Export: webviews cannot download, so the extension asks where to save and writes the file. */
  | { type: 'save'; filename: string; mime: string; encoding: 'text' | 'dataUrl'; data: string }
  /**
   * The user drew an object box on image `image`'s SID map (or cleared it: `bbox` null) in the report from file
   * `source` (as sent with the report). `bbox` is [x, y, width, height] in the ORIGINAL image's pixels. The
   * extension stores it as images[image].region {bbox, source: 'panel'} with its regionMask, recomputes every
   * layer's concentration and writes the report (refused while an analysis is writing that file).
   */
  | { type: 'setRegion'; source: string; image: number; bbox: [number, number, number, number] | null }
  /** "Edit preprocessing…" on the header's profile chip: the extension asks for the model's profile again. */
  | { type: 'editPreprocessing'; source?: string };

export function isFromWorker(m: unknown): m is FromWorker {
  return !!m && typeof m === 'object' && typeof (m as { kind?: unknown }).kind === 'string';
}
