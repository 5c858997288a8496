/**
 * Runs one analysis in the worker pool with VS Code's progress UI: a cancellable notification advancing per layer
 * (message: layer, phase, image, step or decoder epoch), a status-bar item, log lines (backend, timings, lambda and
 * constraint ratios per layer, RU with its decoder's PSNR, concentration, gradient magnitude, decoder training),
 * warnings (logged, and the first of a run as a notification), live report updates for open panels, and errors
 * turned into one-line notifications.
 */
import { boundPrefix, isFlagged, qualityNote } from '../engine/quality';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import type { AnalysisEvent } from '../engine/events';
import type { LayerResult, Report } from '../engine/report';
import { parseReport, writeReport } from '../engine/reportFile';
import { formatDuration } from '../engine/duration';
import { progressText, ProgressTracker, runningLayersText } from '../engine/progressEstimate';
import { layerLabel } from '../engine/layerLabel';
import type { SettingsInput } from '../engine/settings';
import type { ImageOptions } from '../engine/geometry';
import { describeImageOptions } from '../engine/imageOptions';
import type { AnalyzeParams } from '../protocol';
import type { RunHandlers, RunResult } from '../worker/client';
import { runLayersInPool } from '../worker/parallel';
import type { ExtensionSettings } from './config';
import type { Ctx } from './ctx';
import { plainMessage } from './messages';

export interface AnalysisJob {
  modelPath: string;
  /** Legend and notification label (model name). */
  label: string;
  reportPath: string;
  images: string[];
  settings: SettingsInput;
  /** The layers to analyse (undefined: every layer). */
  layers?: string[];
  /** The worker processes and whether they split a layer's samples (`infodiscard.workers`, `splitSamples`). */
  pool: PoolSettings;
  /** RU: the decoders' extra training images (absolute paths) and where trained decoders are cached. */
  trainImages?: string[];
  decoderCacheDir?: string;
  /** Concentration: the sidecar JSON of object regions (absolute path). */
  boxesFile?: string;
  /** How image files fit the model input (`infodiscard.resize` / `transparency`); absent: the engine's defaults. */
  imageOptions?: ImageOptions;
  /** Warnings of the extension's own about this run, said (like the engine's) once it starts. */
  notes?: string[];
}

export type AnalysisOutcome =
  | { status: 'complete' | 'cancelled'; report: Report | undefined }
  | { status: 'failed' };

const fmt = (v: unknown, d = 3): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '?');

const prec = (v: unknown, d = 3): string => (typeof v === 'number' && Number.isFinite(v) ? v.toPrecision(d) : '?');

/** What the layer measured beyond SID: RU (with its decoder), concentration, gradient magnitude; '' for none. */
function extraMetricsLog(r: LayerResult): string {
  const parts: string[] = [];
  if (r.ru) {
    const d = r.ru.decoder;
    const decoder = d ? ` (decoder ${fmt(d.psnr, 1)} dB, ${d.cached ? 'cached' : `${d.epochs} epochs, ${fmt(d.seconds, 1)} s`})` : '';
    parts.push(`RU ${fmt(r.ru.mean)} ± ${fmt(r.ru.std)} nats/pixel${decoder}`);
  }
  if (r.concentration) parts.push(`concentration ${fmt(r.concentration.mean)} ± ${fmt(r.concentration.std)} (${r.concentration.images} images)`);
  else if (r.concentration === null) parts.push('concentration: no image has an object region');
  if (r.baselines) parts.push(`|grad| ${prec(r.baselines.gradNorm?.mean)}`);
  return parts.map((p) => `; ${p}`).join('');
}

/** The per-layer log line: SID, constraint ratio and lambda per image, steps, time; then RU, concentration, |grad|. */
export function layerLogLine(r: LayerResult, index: number, total: number, alpha: number): string {
  const ratios = r.perImage.map((p) => fmt(p.constraintRatio, 3)).join(', ');
  const lambdas = r.perImage.map((p) => (Number.isFinite(p.lambda) ? p.lambda.toPrecision(3) : '?')).join(', ');
  const steps = r.perImage.map((p) => p.steps).join(', ');
  const secs = r.perImage.reduce((a, p) => a + (Number.isFinite(p.seconds) ? p.seconds : 0), 0);
  const maxed = r.perImage.filter((p) => p.stopReason === 'maxSteps').length;
  // Schema 3: "≥" before a bound, and one ⚠ line per flagged image result with its reason.
  const flagged = r.perImage.filter((p) => isFlagged(p.quality)).map((p) => `\n  ⚠ image ${p.image + 1}: ${qualityNote(p.quality)}`).join('');
  return `[${index + 1}/${total}] ${r.name} (${r.kind}): SID ${boundPrefix(r.quality)}${fmt(r.sid.mean)} ± ${fmt(r.sid.std)} nats/pixel; `
    + `constraint ratio ${ratios} (alpha ${alpha}); lambda ${lambdas}; steps ${steps}${maxed ? ` (${maxed} hit maxSteps)` : ''}; ${secs.toFixed(1)} s`
    + extraMetricsLog(r) + flagged;
}

const PHASE_TEXT: Record<Extract<AnalysisEvent, { type: 'phase' }>['phase'], string> = {
  sid: 'SID',
  decoder: 'training the RU decoder',
  ru: 'RU',
  baselines: 'gradient baselines',
};

/** A warning as one line: "layer "conv2": decoder reconstructs poorly (12.3 dB)". */
export function warningText(e: Extract<AnalysisEvent, { type: 'warning' }>): string {
  return `${e.layer !== undefined ? `layer "${e.layer}": ` : ''}${e.message}`;
}

/** A report file's contents, or undefined while it is missing or half-written. */
export async function readReportFile(file: string): Promise<Report | undefined> {
  try {
    return parseReport(await readFile(file, 'utf8'), file);
  } catch {
    return undefined;
  }
}

/**
 * Publishes a running analysis's report to the open panels, strictly in order: a slow read of an older file must
 * never land after a newer report (the panel would step back from 'complete' to 'running'). `publish()` reads the
 * file, `publish(report)` sends the report given; `settled` resolves once everything published so far has landed.
 */
export function reportPublisher(ctx: Ctx, reportPath: string): { publish(report?: Report): void; settled(): Promise<void> } {
  let published: Promise<void> = Promise.resolve();
  return {
    publish(report) {
      published = published.then(async () => {
        const r = report ?? (await readReportFile(reportPath));
        if (r) ctx.fireReportChanged({ path: reportPath, report: r });
      });
    },
    settled: () => published,
  };
}

/** The settings that shape how an analysis runs: the worker pool, and whether ONNX layers may use onnxruntime. */
export type PoolSettings = Pick<ExtensionSettings, 'workers' | 'splitSamples'> & Partial<Pick<ExtensionSettings, 'native'>>;

/**
 * One analysis in the worker pool: with several workers its layers and images run in parallel (merged in order),
 * and workers left free split a layer's noise samples as `splitSamples` says. `native: off` keeps ONNX layers on tfjs.
 */
export function runInPool(ctx: Ctx, params: AnalyzeParams, { workers, splitSamples, native }: PoolSettings, handlers: RunHandlers): Promise<RunResult> {
  const pool = ctx.pool(workers);
  const request: AnalyzeParams = native === 'off' ? { ...params, native } : params;
  return workers > 1 ? runLayersInPool(pool, request, workers, handlers, { splitSamples }) : pool.run(request, handlers);
}

/** A pool error as one line: the notification offers the kept report with a button, so its path is left out. */
export function poolErrorText(e: unknown): string {
  return plainMessage(String((e as { message?: unknown } | null)?.message ?? e).replace(/; the finished layers are kept in .*$/, ''));
}

/** Runs the analysis; resolves with what happened (errors have been shown to the user already). */
export function runAnalysis(ctx: Ctx, job: AnalysisJob): Thenable<AnalysisOutcome> {
  const log = ctx.log;
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `SID of ${plainMessage(job.label)}`, cancellable: true },
    async (progress, token) => {
      const run = ctx.runs.add(job.label, undefined, job.reportPath);
      const cancelSub = token.onCancellationRequested(() => run.controller.abort());
      const t0 = Date.now();
      let total = 0;
      let started = false;
      let lastStepReport = 0;
      let warnings = 0;
      let layerPos = '';
      let done = 0;
      let skipped = 0;
      let reused = 0;
      let images = 1;
      const tracker = new ProgressTracker();
      const { publish, settled } = reportPublisher(ctx, job.reportPath);
      const warn = (text: string): void => {
        log.warn(`${job.label}: ${text}`);
        // One notification per run (not modal); the rest are in the log.
        if (warnings++ > 0) return;
        void vscode.window.showWarningMessage(`infodiscard: ${plainMessage(job.label)}: ${plainMessage(text)}`, 'Show Log').then((pick) => {
          if (pick === 'Show Log') log.show(true);
        });
      };
      // After a layer's end, the layers still running (other workers): " · running layer2, layer3".
      const stillRunning = (): string => (tracker.running().length ? ` · running ${plainMessage(runningLayersText(tracker.running()))}` : '');
      const onEvent = (e: AnalysisEvent): void => {
        switch (e.type) {
          case 'started':
            total = e.layers.length;
            images = e.images;
            tracker.started(e.layers.length, e.images);
            log.info(`${job.label}: backend ${e.backend}, ${e.layers.length} layers, ${e.images} images, started after ${Date.now() - t0} ms`);
            if (e.reused?.length) log.info(`${job.label}: resuming: ${e.reused.join(', ')} taken over from the earlier report (same model, settings and images)`);
            progress.report({ message: `${e.layers.length} layers × ${e.images} images (${e.backend})` });
            started = true;
            for (const note of job.notes ?? []) warn(note);
            publish();
            break;
          case 'layerStarted': {
            // With several workers, layers run at once: the notification and the status bar name every one.
            tracker.layerStarted(e.layer);
            layerPos = `${e.index + 1}/${e.total}`;
            const running = runningLayersText(tracker.running());
            run.setProgress(`${running} ${layerPos}`);
            progress.report({ message: `${plainMessage(running)} (${layerPos})` });
            break;
          }
          case 'step': {
            // The worker sends at most ~10 per second; the notification needs fewer.
            const now = Date.now();
            if (now - lastStepReport < 250) break;
            lastStepReport = now;
            const metric = e.metric === 'ru' ? ' · RU' : '';
            const est = tracker.step(e);
            progress.report({ message: `${plainMessage(runningLayersText(tracker.running()))}${metric} · image ${e.image + 1}/${images} · ${progressText(est, e.step, e.maxSteps, formatDuration)}` });
            break;
          }
          case 'phase': {
            const what = `${PHASE_TEXT[e.phase] ?? e.phase}${e.detail ? ` (${e.detail})` : ''}`;
            // SID starts every layer (layerStarted says so already); the other phases are news.
            if (e.phase !== 'sid' || e.detail) log.info(`${job.label}: ${e.layer}: ${what}`);
            const others = tracker.running().filter((l) => l !== e.layer);
            const also = others.length ? ` (also running: ${runningLayersText(others, 1)})` : '';
            run.setProgress(`${runningLayersText(tracker.running())} ${layerPos}${e.phase === 'sid' ? '' : ` · ${layerLabel(e.layer)}: ${e.phase === 'decoder' ? 'decoder' : PHASE_TEXT[e.phase] ?? e.phase}`}`);
            progress.report({ message: `${plainMessage(layerLabel(e.layer))} · ${plainMessage(what)}${plainMessage(also)}` });
            break;
          }
          case 'decoderEpoch': {
            log.info(`${job.label}: ${e.layer}: decoder epoch ${e.epoch}/${e.maxEpochs}, loss ${prec(e.trainLoss)}, held-out ${prec(e.heldOutLoss)}`);
            const now = Date.now();
            if (now - lastStepReport < 250 && e.epoch < e.maxEpochs) break;
            lastStepReport = now;
            progress.report({ message: `${plainMessage(layerLabel(e.layer))} · decoder epoch ${e.epoch}/${e.maxEpochs} · held-out loss ${prec(e.heldOutLoss)}` });
            break;
          }
          case 'warning':
            warn(warningText(e));
            break;
          case 'layerDone': {
            done++;
            if (e.result.reused) reused++;
            tracker.layerEnded(e.result.reused ? undefined : e.result.perImage, e.layer);
            log.info(`${job.label}: ${layerLogLine(e.result, e.index, e.total, job.settings.alpha)}${e.result.reused ? ' (reused from the earlier report)' : ''}`);
            progress.report({ increment: 100 / Math.max(1, e.total), message: `${plainMessage(layerLabel(e.layer))} ${e.result.reused ? 'reused' : 'done'} (${e.index + 1}/${e.total})${stillRunning()}` });
            if (tracker.running().length) run.setProgress(`${runningLayersText(tracker.running())} · ${done}/${e.total} done`);
            publish();
            break;
          }
          case 'layerSkipped':
            done++;
            skipped++;
            tracker.layerEnded(undefined, e.layer);
            log.warn(`${job.label}: [${e.index + 1}/${e.total}] ${e.layer} skipped: ${e.reason}`);
            progress.report({ increment: 100 / Math.max(1, e.total), message: `${plainMessage(layerLabel(e.layer))} skipped (${e.index + 1}/${e.total})${stillRunning()}` });
            if (tracker.running().length) run.setProgress(`${runningLayersText(tracker.running())} · ${done}/${e.total} done`);
            publish();
            break;
          case 'done':
            publish(e.report);
            break;
        }
      };
      const params: AnalyzeParams = {
        modelPath: job.modelPath,
        images: job.images,
        settings: job.settings,
        reportPath: job.reportPath,
        ...(job.layers ? { layers: job.layers } : {}),
        ...(job.trainImages?.length ? { trainImages: job.trainImages } : {}),
        ...(job.decoderCacheDir ? { decoderCacheDir: job.decoderCacheDir } : {}),
        ...(job.boxesFile ? { boxesFile: job.boxesFile } : {}),
        ...(job.imageOptions ? { imageOptions: job.imageOptions } : {}),
      };
      const metrics = (job.settings.metrics ?? ['sid']).filter((m) => m !== 'sid');
      log.info(`${job.label}: analysing ${job.modelPath} on ${job.images.length} images -> ${job.reportPath}`);
      if (job.imageOptions) log.info(`${job.label}: images fitted with ${describeImageOptions(job.imageOptions)}`);
      if (metrics.length) {
        const ru = metrics.includes('ru') ? `; RU decoders train on ${job.trainImages?.length ? `${job.trainImages.length} more images and ` : ''}the analysis images, cached in ${job.decoderCacheDir ?? '(no cache)'}` : '';
        const conc = metrics.includes('concentration') ? `; object regions from ${job.boxesFile ?? '(no boxes file)'}` : '';
        log.info(`${job.label}: metrics SID, ${metrics.join(', ')}${ru}${conc}`);
      }
      try {
        const result = await runInPool(ctx, params, job.pool, { onEvent, signal: run.controller.signal });
        await settled();
        const report = await readReportFile(result.reportPath);
        if (report) ctx.fireReportChanged({ path: result.reportPath, report });
        const secs = formatDuration((Date.now() - t0) / 1000);
        if (result.status === 'cancelled') {
          const kept = report?.layers.length ?? 0;
          log.info(`${job.label}: cancelled after ${secs}; ${kept} of ${total || '?'} layers kept`);
          progress.report({ message: `cancelled · ${kept} of ${total || '?'} layers kept` });
          run.finish('cancelled', `${kept} of ${total || '?'} layers kept`);
          if (!started) return { status: 'cancelled', report: undefined };
          return { status: 'cancelled', report };
        }
        const counts = [reused ? `${reused} reused` : '', skipped ? `${skipped} skipped` : ''].filter((x) => x).join(', ');
        log.info(`${job.label}: complete in ${secs}${counts ? ` (${counts})` : ''}${warnings ? `, ${warnings} warning${warnings > 1 ? 's' : ''}` : ''}`);
        progress.report({ message: `complete in ${secs}${counts ? ` · ${counts}` : ''}` });
        run.finish('complete', `${report?.layers.length ?? done} layers${counts ? `, ${counts}` : ''}`);
        return { status: 'complete', report };
      } catch (e) {
        // Every terminal state reaches the panel: a worker that crashed leaves its report 'running'; it is over.
        await settled().catch(() => undefined);
        await markFailed(ctx, job.reportPath, poolErrorText(e));
        progress.report({ message: `failed: ${poolErrorText(e)}` });
        run.finish('failed', poolErrorText(e));
        // Not awaited: the progress notification must close now, not when the user dismisses the error.
        void showAnalysisError(ctx, job, e);
        return { status: 'failed' };
      } finally {
        cancelSub.dispose();
        run.dispose();
        ctx.releaseWorkersIfUnused({ afterCancel: run.controller.signal.aborted });
      }
    },
  );
}

/**
 * After a failed run: the report at `reportPath`, if one was started, says failed (with the reason) rather than
 * running, and the open panels get it. The engine writes 'failed' itself; a crashed worker process cannot.
 */
export async function markFailed(ctx: Ctx, reportPath: string, reason: string): Promise<void> {
  const report = await readReportFile(reportPath);
  if (!report) return;
  if (report.status === 'running') {
    report.status = 'failed';
    report.error = report.error ?? reason;
    try {
      writeReport(reportPath, report);
    } catch {
      // Read-only folder: the panel still gets the failed state below.
    }
  }
  ctx.fireReportChanged({ path: reportPath, report });
}

interface PoolError {
  code?: string;
  message?: string;
  reportPath?: string;
}

async function showAnalysisError(ctx: Ctx, job: AnalysisJob, e: unknown): Promise<void> {
  const err = (e ?? {}) as PoolError;
  const message = poolErrorText(e);
  const partial = err.reportPath && existsSync(err.reportPath) ? err.reportPath : undefined;
  if (partial) {
    const report = await readReportFile(partial);
    if (report) ctx.fireReportChanged({ path: partial, report });
  }
  if (err.code === 'user') {
    ctx.log.warn(`${job.label}: ${message}`);
    const buttons = partial ? ['Open Partial Report', 'Show Log'] : ['Show Log'];
    const pick = await vscode.window.showErrorMessage(`infodiscard: ${message}`, ...buttons);
    await handleButton(pick, partial);
    return;
  }
  ctx.log.error(`${job.label}: ${err.code ?? 'error'}: ${message}`);
  const kept = partial ? ' The partial report was kept.' : '';
  const pick = await vscode.window.showErrorMessage(
    `infodiscard: analysis of ${plainMessage(job.label)} failed: ${message.replace(/\.$/, '')}.${kept}`,
    ...(partial ? ['Open Partial Report', 'Show Log'] : ['Show Log']),
  );
  await handleButton(pick, partial);
}

async function handleButton(pick: string | undefined, partial: string | undefined): Promise<void> {
  if (pick === 'Show Log') await vscode.commands.executeCommand('infodiscard.showLog');
  else if (pick === 'Open Partial Report' && partial) await vscode.commands.executeCommand('infodiscard.openReport', vscode.Uri.file(partial));
}
