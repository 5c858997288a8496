/**
 * `infodiscard analyze --workers N`: layers are independent, so N worker processes (dist/worker.js, the same
 * workers the extension uses) each take the next layer from a queue, and their results are merged into one report
 * in layer order, written after every finished layer like a single-process run. Seeds derive from a layer's place
 * in the model, so the report is the same whatever the number of workers.
 */
import { mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CancelledError, UserError } from '../engine/errors';
import type { AnalysisEvent } from '../engine/events';
import type { Report } from '../engine/report';
import { mergeReports } from '../engine/reportMerge';
import { readReport, writeReport } from '../engine/reportFile';
import { resolveLayers } from '../engine/analyze';
import type { AnalyzeParams } from '../protocol';
import { AnalysisError, AnalysisPool } from '../worker/client';
import type { AnalyzeArgs } from './args';

/** How many workers `--workers auto` starts: one per core, never more than there are layers. */
export function autoWorkers(layers: number): number {
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(cores, layers));
}

function readPart(file: string): Report | undefined {
  try {
    return readReport(file);
  } catch {
    return undefined;
  }
}

export async function analyzeInWorkers(
  args: AnalyzeArgs,
  workers: number | 'auto',
  onEvent: (e: AnalysisEvent) => void,
  signal: AbortSignal,
): Promise<Report> {
  const t0 = performance.now();
  // Workers start lazily, so 'auto' sized at the core count starts no more than there are layers to run.
  const poolSize = typeof workers === 'number' ? workers : autoWorkers(Number.MAX_SAFE_INTEGER);
  const pool = new AnalysisPool(path.join(__dirname, 'worker.js'), { size: poolSize });
  const out = path.resolve(args.out);
  const partsDir = `${out}.parts`;
  try {
    // The layer list comes from a worker too: the model is loaded where it is analysed.
    const listed = await pool.listLayers({ modelPath: args.model, backend: args.settings.backend }, { signal });
    if (listed.status === 'cancelled') throw new CancelledError();
    const model = listed.model;
    const layers = resolveLayers({ path: model.modelPath, layers: model.layers }, args.layers);
    const size = Math.min(poolSize, layers.length);
    const warned = new Set<string>();
    mkdirSync(partsDir, { recursive: true });

    const parts = new Map<string, string>(layers.map((name, i) => [name, path.join(partsDir, `${i}.json`)]));
    let started = false;
    let merged: Report | undefined;
    const save = () => {
      const reports = [...parts.values()].flatMap((f) => readPart(f) ?? []);
      if (reports.length === 0) return;
      merged = mergeReports(reports, layers, (performance.now() - t0) / 1000);
      if (merged.status === 'complete' && merged.layers.length < layers.length) merged.status = 'running';
      writeReport(out, merged);
    };
    let done = 0;
    const base: Omit<AnalyzeParams, 'layers' | 'reportPath'> = {
      modelPath: args.model,
      images: args.images,
      settings: args.settings,
      inputSize: args.inputSize,
      trainImages: args.trainImages,
      // One cache for all workers, beside the merged report (writes are atomic).
      decoderCacheDir: args.decoderCacheDir ?? path.join(path.dirname(out), 'decoders'),
      boxesFile: args.boxesFile,
      defaultRegion: args.defaultRegion,
      targetClass: args.targetClass,
    };
    const runs = layers.map((name, index) =>
      pool.run({ ...base, layers: [name], reportPath: parts.get(name)! }, {
        signal,
        onEvent: (e) => {
          switch (e.type) {
            case 'started':
              if (!started) {
                started = true;
                onEvent({ ...e, layers, images: e.images, backend: `${e.backend}, ${size} worker processes` });
              }
              break;
            case 'layerStarted':
              onEvent({ ...e, index, total: layers.length });
              break;
            case 'layerDone':
              done++;
              save();
              onEvent({ ...e, index, total: layers.length });
              break;
            case 'done':
              break;
            case 'warning':
              // Every worker sees the same images and boxes: say each warning once.
              if (!warned.has(e.message)) {
                warned.add(e.message);
                onEvent(e);
              }
              break;
            default:
              onEvent(e);
          }
        },
      }),
    );
    // Let every run settle (a failure or cancel keeps what the others finished), then report the first problem.
    const results = await Promise.allSettled(runs);
    save();
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      const e = failure.reason;
      if (merged) {
        merged.status = 'failed';
        merged.error = e instanceof Error ? e.message : String(e);
        writeReport(out, merged);
      }
      if (e instanceof AnalysisError && e.code === 'user') throw new UserError(e.message);
      throw e;
    }
    if (signal.aborted || results.some((r) => r.status === 'fulfilled' && r.value.status === 'cancelled')) {
      if (merged) {
        merged.status = 'cancelled';
        writeReport(out, merged);
      }
      throw new CancelledError();
    }
    if (!merged || done !== layers.length) throw new Error(`only ${done} of ${layers.length} layers were analysed`);
    merged.status = 'complete';
    writeReport(out, merged);
    onEvent({ type: 'done', report: merged });
    return merged;
  } finally {
    await pool.dispose();
    rmSync(partsDir, { recursive: true, force: true });
  }
}
