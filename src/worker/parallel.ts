/**
 * One analysis split across a pool of worker processes: every layer is a job, or several when the layer's images can
 * be split (one job per group of images), so each worker takes the next job as it finishes one. The results merge
 * into one report at `params.reportPath`, in layer order, written after every finished layer like a single-worker
 * run. Seeds derive from a layer's place in the model and an image's place in the list, so the report is the same
 * whatever the number of workers. Used by the CLI (--workers) and the extension (workers).
 *
 * Workers that a layer's images leave free split the layer's noise samples instead (teams, teamSize below), on
 * large inputs where a step costs seconds: the first layer then comes sooner, and no deep layer runs alone on one
 * core at the end of the run.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { collectImages, skippedFilesWarning } from '../engine/imagePaths';
import { resolveLayers } from '../engine/resolveLayers';
import type { AnalysisEvent } from '../engine/events';
import type { Report } from '../engine/report';
import { mergeReports } from '../engine/reportMerge';
import { readReport, writeReport } from '../engine/reportFile';
import { DEFAULT_SETTINGS } from '../engine/settings';
import type { AnalyzeParams } from '../protocol';
import type { AnalysisPool, RunHandlers, RunResult } from './client';

function readPart(file: string): Report | undefined {
  try {
    return readReport(file);
  } catch {
    return undefined;
  }
}

export interface PlannedJob {
  layer: string;
  /** The layer's place in the request (the order of the merged report). */
  layerIndex: number;
  /** The images this job analyses (all when absent). */
  images?: number[];
}

/**
 * The jobs of one analysis: one per layer, and when there are more workers than one and several images, each
 * layer's images in up to `poolSize` contiguous groups, so that the first layer finishes sooner and no single
 * heavy layer holds the run's tail. RU keeps a layer in one job: its decoder is trained once per layer.
 */
export function planJobs(layers: readonly string[], imageCount: number, poolSize: number, splitImages: boolean): PlannedJob[] {
  const groups = splitImages ? Math.max(1, Math.min(poolSize, imageCount)) : 1;
  return layers.flatMap((layer, layerIndex) => {
    if (groups === 1) return [{ layer, layerIndex }];
    return Array.from({ length: groups }, (_, g) => {
      const from = Math.floor((g * imageCount) / groups);
      const to = Math.floor(((g + 1) * imageCount) / groups);
      return { layer, layerIndex, images: Array.from({ length: to - from }, (_, i) => from + i) };
    });
  });
}

/**
 * The order jobs are handed to the pool (indices into `jobs`): the first layer's jobs first, so the first result
 * comes as soon as it can, then the other layers deepest first. A layer's probe runs the network up to it, so the
 * deeper the dearer, and starting the dearest early keeps one heavy layer from holding the run's tail (longest job
 * first). ResNet-18 at 224x224, four stages, 2 workers: in model order the workers ran layer1+layer3 (302 s) and
 * layer2+layer4 (608 s); this order gives layer4 (481 s) and layer1+layer2+layer3 (429 s). Seeds and the report
 * do not depend on the order.
 */
export function dispatchOrder(jobs: readonly PlannedJob[]): number[] {
  const idx = jobs.map((_, j) => j);
  const firstLayer = Math.min(...jobs.map((job) => job.layerIndex));
  return [...idx.filter((j) => jobs[j].layerIndex === firstLayer), ...idx.filter((j) => jobs[j].layerIndex !== firstLayer).sort((a, b) => jobs[b].layerIndex - jobs[a].layerIndex || a - b)];
}

/** Input pixels (height × width) from which teams are formed by default: a step costs a second or more there. */
export const TEAM_MIN_PIXELS = 128 * 128;

/**
 * Whether a layer's noise samples may be split over several workers: 'auto' (default) on large inputs (at least
 * TEAM_MIN_PIXELS) analysed on wasm or cpu, one thread per process; 'always' whenever the analysis allows it (tests,
 * benchmarks); 'never'. The CLI's --split-samples, else the INFODISCARD_SPLIT_SAMPLES environment variable.
 */
export type SplitSamples = 'auto' | 'always' | 'never';
export const SPLIT_SAMPLES_CHOICES: readonly SplitSamples[] = ['auto', 'always', 'never'];

/**
 * Workers per job (1 = no team): the workers the layer's image groups leave free, at most one per noise sample.
 * Only for SID searches (RU's entropy and the preview see a layer's whole batch at once) and, in 'auto', where a
 * step costs seconds (input of TEAM_MIN_PIXELS or more) and each process runs one thread (wasm, cpu: tfjs-node
 * already uses every core, and a GPU worker would wait for its wasm partners). With one image and 2 workers, every
 * layer runs on both: on ResNet-18 at 224x224 the first layer comes in about half the time, and layer4 no longer
 * runs alone at the end (docs/performance.md).
 */
export function teamSize(o: { mode: SplitSamples; poolSize: number; imageGroups: number; samples: number; pixels: number; backend?: string; splittable: boolean }): number {
  if (o.mode === 'never' || !o.splittable || o.poolSize < 2) return 1;
  if (o.mode === 'auto' && (o.pixels < TEAM_MIN_PIXELS || (o.backend !== 'wasm' && o.backend !== 'cpu'))) return 1;
  return Math.max(1, Math.min(o.samples, Math.floor(o.poolSize / Math.max(1, o.imageGroups))));
}

/** The mode from the environment (INFODISCARD_SPLIT_SAMPLES), 'auto' when unset or not one of the choices. */
export function splitSamplesFromEnv(env: NodeJS.ProcessEnv = process.env): SplitSamples {
  const v = env.INFODISCARD_SPLIT_SAMPLES as SplitSamples | undefined;
  return v && SPLIT_SAMPLES_CHOICES.includes(v) ? v : 'auto';
}

export interface PoolRunOptions {
  /** See SplitSamples (default: splitSamplesFromEnv()). */
  splitSamples?: SplitSamples;
}

export interface LayersInPoolResult extends RunResult {
  /** Worker processes that ran jobs (at most the pool's size, at most the number of jobs). */
  workers: number;
  /** Jobs the analysis was split into (layers, or layers times image groups). */
  jobs: number;
  /** Workers each job ran on (1: no team; see teamSize). */
  team: number;
}

/**
 * Runs `params` in the pool. Resolves 'complete' or 'cancelled' (the finished layers stay in the report); rejects
 * with the first job's error after the other jobs settle, the report then saying 'failed'.
 */
export async function runLayersInPool(pool: AnalysisPool, params: AnalyzeParams, poolSize: number, handlers: RunHandlers = {}, options: PoolRunOptions = {}): Promise<LayersInPoolResult> {
  const { signal } = handlers;
  const onEvent = handlers.onEvent ?? (() => {});
  const t0 = performance.now();
  const out = path.resolve(params.reportPath);
  const partsDir = `${out}.parts`;
  // The same files in the same order for every job, so an image's index (and seed) is the same everywhere; a
  // missing image folder is said before any worker starts.
  // Jobs get the files, not the folders: the files a folder could not give are said here, once.
  const collected = collectImages(params.images);
  const images = collected.paths;
  const skippedFiles = skippedFilesWarning(collected.skipped);
  const listed = await pool.listLayers({ modelPath: params.modelPath, ...(params.weightsPath ? { weightsPath: params.weightsPath } : {}), backend: params.settings.backend, checkRescale: false }, { signal });
  if (listed.status === 'cancelled') return { status: 'cancelled', reportPath: params.reportPath, workers: 0, jobs: 0, team: 1 };
  const layers = resolveLayers({ path: listed.model.modelPath, layers: listed.model.layers }, params.layers);
  const splitImages = !(params.settings.metrics ?? []).includes('ru');
  const jobs = planJobs(layers, images.length, poolSize, splitImages);
  const { settings } = params;
  const [height, width] = params.inputSize ?? [listed.model.input.height ?? 0, listed.model.input.width ?? 0];
  const team = teamSize({
    mode: options.splitSamples ?? splitSamplesFromEnv(),
    poolSize,
    imageGroups: splitImages ? Math.max(1, Math.min(poolSize, images.length)) : 1,
    samples: settings.samples ?? DEFAULT_SETTINGS.samples,
    pixels: height * width,
    backend: listed.model.backend,
    splittable: splitImages && !settings.preview && !settings.warmStart,
  });
  const workers = Math.max(1, Math.min(poolSize, jobs.length * team));
  mkdirSync(partsDir, { recursive: true });
  // Resume: every job reads the earlier report as it was before this run (the merged report replaces it as layers
  // finish), and takes its layer over when model, settings and images match (engine/resume.ts).
  const previous = path.join(partsDir, 'previous.json');
  const earlier = existsSync(out);
  if (params.resume !== false && earlier) copyFileSync(out, previous);
  try {
    const partOf = (j: number) => path.join(partsDir, `${j}.json`);
    const jobsOf = layers.map((_, i) => jobs.flatMap((job, j) => (job.layerIndex === i ? [j] : [])));
    // Each part is read when its job finishes (and once more at the end, for failed or cancelled ones).
    const read = new Map<number, Report>();
    const readJob = (j: number) => {
      const r = readPart(partOf(j));
      if (r) read.set(j, r);
    };
    const finishedJobs = new Set<number>();
    const layerComplete = (i: number) => jobsOf[i].every((j) => finishedJobs.has(j));
    let firstLayerSeconds: number | undefined;
    let merged: Report | undefined;
    const save = (status?: Report['status'], error?: string) => {
      const reports = [...read.values()];
      if (reports.length === 0) return;
      const incomplete = new Set(layers.filter((_, i) => !layerComplete(i)));
      merged = mergeReports(reports, layers, { seconds: (performance.now() - t0) / 1000, firstLayerSeconds, incomplete });
      if (merged.status === 'complete' && merged.layers.length < layers.length) merged.status = 'running';
      if (status) merged.status = status;
      if (error) merged.error = error;
      writeReport(out, merged);
    };
    let started = false;
    const layerStarted = new Set<number>();
    let done = 0;
    const warned = new Set<string>();
    const skipped = new Set<number>();
    const forward = (j: number) => (e: AnalysisEvent) => {
      const index = jobs[j].layerIndex;
      switch (e.type) {
        case 'started':
          if (!started) {
            started = true;
            // The report is there from the start (every layer pending, status running), as a one-process run writes
            // it, so an open panel shows the run rather than nothing until the first layer finishes (minutes on a
            // 224×224 model). Made from this job's first save; an earlier report (resume) stays until then.
            if (!earlier && read.size === 0) {
              const part = readPart(partOf(j));
              if (part) writeReport(out, { ...mergeReports([part], layers, { seconds: (performance.now() - t0) / 1000, incomplete: new Set(layers) }), status: 'running' });
            }
            // A pool with a GPU runs one worker on webgpu, the others on wasm (src/worker/client.ts).
            const where = e.backend.startsWith('webgpu') && workers > 1 ? `${e.backend} on one worker, wasm on the others` : e.backend;
            const { reused: _own, ...rest } = e;
            const split = team > 1 ? `, each layer's ${settings.samples ?? DEFAULT_SETTINGS.samples} noise samples split over ${team}` : '';
            onEvent({ ...rest, layers, images: images.length, backend: `${where}, ${workers} worker processes${split}` });
            if (skippedFiles) onEvent({ type: 'warning', message: skippedFiles });
          }
          break;
        case 'layerStarted':
          if (!layerStarted.has(index)) {
            layerStarted.add(index);
            onEvent({ ...e, index, total: layers.length });
          }
          break;
        case 'layerDone': {
          finishedJobs.add(j);
          readJob(j);
          if (!layerComplete(index)) break;
          done++;
          firstLayerSeconds ??= (performance.now() - t0) / 1000;
          save();
          const result = merged?.layers.find((l) => l.name === layers[index]) ?? e.result;
          onEvent({ ...e, result, index, total: layers.length });
          break;
        }
        case 'layerSkipped': {
          finishedJobs.add(j);
          readJob(j);
          if (!layerComplete(index) || skipped.has(index)) break;
          skipped.add(index);
          done++;
          save();
          onEvent({ ...e, index, total: layers.length });
          break;
        }
        case 'done':
          break;
        case 'warning':
          // Every job sees the same images and boxes: say each warning once.
          if (!warned.has(e.message)) {
            warned.add(e.message);
            onEvent(e);
          }
          break;
        default:
          onEvent(e);
      }
    };
    // One decoder cache for all jobs, beside the merged report (its writes are atomic).
    // Every job folds BatchNorms for the whole layer list, as a one-process run does.
    const shared = { ...params, images, analysedLayers: layers, decoderCacheDir: params.decoderCacheDir ?? path.join(path.dirname(out), 'decoders') };
    const runs = dispatchOrder(jobs).map((j) => {
      const job = jobs[j];
      return pool.runTeam(
        { ...shared, layers: [job.layer], reportPath: partOf(j), ...(existsSync(previous) ? { resumeFrom: previous } : { resume: false }), ...(job.images ? { imageIndices: job.images } : {}) },
        team,
        { signal, onEvent: forward(j) },
      );
    });
    // Let every job settle (a failure or a cancel keeps what the others finished), then report the first problem.
    const results = await Promise.allSettled(runs);
    // Parts not read yet (failed or cancelled jobs), and a team's parts again: they gained the members' processes.
    for (let j = 0; j < jobs.length; j++) if (!read.has(j) || team > 1) readJob(j);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      const e = failure.reason;
      save('failed', e instanceof Error ? e.message : String(e));
      throw e;
    }
    if (signal?.aborted || results.some((r) => r.status === 'fulfilled' && r.value.status === 'cancelled')) {
      save('cancelled');
      return { status: 'cancelled', reportPath: params.reportPath, workers, jobs: jobs.length, team };
    }
    if (done !== layers.length) throw new Error(`only ${done} of ${layers.length} layers were analysed`);
    save('complete');
    onEvent({ type: 'done', report: merged! });
    return { status: 'complete', reportPath: params.reportPath, workers, jobs: jobs.length, team };
  } finally {
    rmSync(partsDir, { recursive: true, force: true });
  }
}
