/**
 * One analysis split across a pool of worker processes: every layer is its own job, so each worker takes the next
 * layer as it finishes one, and the results merge into one report at `params.reportPath`, in layer order, written
 * after every finished layer like a single-worker run. Seeds derive from a layer's place in the model, so the
 * report is the same whatever the number of workers. Used by the CLI (--workers) and the extension (workers).
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { resolveLayers } from '../engine/resolveLayers';
import type { AnalysisEvent } from '../engine/events';
import type { Report } from '../engine/report';
import { mergeReports } from '../engine/reportMerge';
import { readReport, writeReport } from '../engine/reportFile';
import type { AnalyzeParams } from '../protocol';
import type { AnalysisPool, RunHandlers, RunResult } from './client';

function readPart(file: string): Report | undefined {
  try {
    return readReport(file);
  } catch {
    return undefined;
  }
}

export interface LayersInPoolResult extends RunResult {
  /** Worker processes that ran layers (at most the pool's size, at most the number of layers). */
  workers: number;
}

/**
 * Runs `params` with one job per layer. Resolves 'complete' or 'cancelled' (the finished layers stay in the
 * report); rejects with the first job's error after the other jobs settle, the report then saying 'failed'.
 */
export async function runLayersInPool(pool: AnalysisPool, params: AnalyzeParams, poolSize: number, handlers: RunHandlers = {}): Promise<LayersInPoolResult> {
  const { signal } = handlers;
  const onEvent = handlers.onEvent ?? (() => {});
  const t0 = performance.now();
  const out = path.resolve(params.reportPath);
  const partsDir = `${out}.parts`;
  const listed = await pool.listLayers({ modelPath: params.modelPath, backend: params.settings.backend, checkRescale: false }, { signal });
  if (listed.status === 'cancelled') return { status: 'cancelled', reportPath: params.reportPath, workers: 0 };
  const layers = resolveLayers({ path: listed.model.modelPath, layers: listed.model.layers }, params.layers);
  const workers = Math.max(1, Math.min(poolSize, layers.length));
  mkdirSync(partsDir, { recursive: true });
  try {
    const parts = new Map<string, string>(layers.map((name, i) => [name, path.join(partsDir, `${i}.json`)]));
    // Each part is read when its layer finishes (and once more at the end, for failed or cancelled ones).
    const read = new Map<string, Report>();
    const readLayer = (name: string) => {
      const r = readPart(parts.get(name)!);
      if (r) read.set(name, r);
    };
    let merged: Report | undefined;
    const save = (status?: Report['status'], error?: string) => {
      const reports = [...read.values()];
      if (reports.length === 0) return;
      merged = mergeReports(reports, layers, (performance.now() - t0) / 1000);
      if (merged.status === 'complete' && merged.layers.length < layers.length) merged.status = 'running';
      if (status) merged.status = status;
      if (error) merged.error = error;
      writeReport(out, merged);
    };
    let started = false;
    let done = 0;
    const warned = new Set<string>();
    const forward = (index: number) => (e: AnalysisEvent) => {
      switch (e.type) {
        case 'started':
          if (!started) {
            started = true;
            onEvent({ ...e, layers, backend: `${e.backend}, ${workers} worker processes` });
          }
          break;
        case 'layerStarted':
          onEvent({ ...e, index, total: layers.length });
          break;
        case 'layerDone':
          done++;
          readLayer(layers[index]);
          save();
          onEvent({ ...e, index, total: layers.length });
          break;
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
    const shared = { ...params, decoderCacheDir: params.decoderCacheDir ?? path.join(path.dirname(out), 'decoders') };
    const runs = layers.map((name, index) => pool.run({ ...shared, layers: [name], reportPath: parts.get(name)! }, { signal, onEvent: forward(index) }));
    // Let every job settle (a failure or a cancel keeps what the others finished), then report the first problem.
    const results = await Promise.allSettled(runs);
    for (const name of layers) if (!read.has(name)) readLayer(name);
    const failure = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failure) {
      const e = failure.reason;
      save('failed', e instanceof Error ? e.message : String(e));
      throw e;
    }
    if (signal?.aborted || results.some((r) => r.status === 'fulfilled' && r.value.status === 'cancelled')) {
      save('cancelled');
      return { status: 'cancelled', reportPath: params.reportPath, workers };
    }
    if (done !== layers.length) throw new Error(`only ${done} of ${layers.length} layers were analysed`);
    save('complete');
    onEvent({ type: 'done', report: merged! });
    return { status: 'complete', reportPath: params.reportPath, workers };
  } finally {
    rmSync(partsDir, { recursive: true, force: true });
  }
}
