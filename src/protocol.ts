/**
 * Every message between the extension host, the analysis worker process and the report webview, declared once.
 * Worker channel: Node IPC (child_process.fork, process.send). Webview channel: webview.postMessage.
 * Data flows one way: engine events -> worker -> extension -> webview; only requests and cancels flow back.
 */
import type { AnalysisEvent } from './engine/events';
import type { ObjectRegion, Report } from './engine/report';
import type { SettingsInput } from './engine/settings';

// ---------------------------------------------------------------------------------------------------------------
// Extension -> worker

export interface AnalyzeParams {
  modelPath: string;
  /** Image files or folders. */
  images: string[];
  /** Layers to analyse; all when omitted. */
  layers?: string[];
  settings: SettingsInput;
  inputSize?: [number, number];
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
}

export type ToWorker =
  /** Start an analysis. `id` is chosen by the extension and names every message about this analysis. */
  | { kind: 'analyze'; id: number; params: AnalyzeParams }
  /** Stop analysis `id` at the next optimisation step; the finished layers stay in the report. */
  | { kind: 'cancel'; id: number }
  /** Finish and exit (the process also exits when its IPC channel closes). */
  | { kind: 'shutdown' };

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
  /** Engine progress for analysis `id`. `step` events are throttled by the worker (at most ~10 per second). */
  | { kind: 'event'; id: number; event: AnalysisEvent }
  /** Analysis `id` ended: complete or cancelled; the report is at `reportPath`. */
  | { kind: 'finished'; id: number; status: 'complete' | 'cancelled'; reportPath: string }
  /** Analysis `id` failed. Layers finished before the failure are in the report at `reportPath`, if any. */
  | { kind: 'failed'; id: number; code: WorkerErrorCode; message: string; detail?: string; reportPath?: string };

// ---------------------------------------------------------------------------------------------------------------
// Extension -> webview

export interface ReportSeries {
  /** Legend label: the model's file name, a checkpoint name ... (untrusted text). */
  label: string;
  report: Report;
  /** The report file (absolute path): the webview echoes it in 'setRegion' so the extension knows what to update. */
  source?: string;
}

/** A report file a panel shows, and its legend label. */
export interface ReportSource {
  /** Absolute path of the report JSON. */
  path: string;
  label: string;
}

/**
 * Which reports a panel shows. Opaque to the webview: it keeps it in its own state (vscode.setState), and the
 * extension's WebviewPanelSerializer reads it back to reopen the same reports after a window reload.
 */
export interface PanelState {
  sources: ReportSource[];
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
  | { type: 'setRegion'; source: string; image: number; bbox: [number, number, number, number] | null };

export function isFromWorker(m: unknown): m is FromWorker {
  return !!m && typeof m === 'object' && typeof (m as { kind?: unknown }).kind === 'string';
}
