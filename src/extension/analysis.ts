/**
 * Runs one analysis in the worker pool with VS Code's progress UI: a cancellable notification advancing per layer
 * (message: layer, image, step), a status-bar item, log lines (backend, timings, lambda and constraint ratios per
 * layer), live report updates for open panels, and errors turned into one-line notifications.
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import type { AnalysisEvent } from '../engine/events';
import type { LayerResult, Report } from '../engine/report';
import { parseReport } from '../engine/reportFile';
import type { SettingsInput } from '../engine/settings';
import type { AnalyzeParams } from '../protocol';
import type { Ctx } from './ctx';
import { plainMessage } from './messages';

export interface AnalysisJob {
  modelPath: string;
  /** Legend and notification label (model name). */
  label: string;
  reportPath: string;
  images: string[];
  settings: SettingsInput;
  workers: number;
}

export type AnalysisOutcome =
  | { status: 'complete' | 'cancelled'; report: Report | undefined }
  | { status: 'failed' };

const fmt = (v: unknown, d = 3): string => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '?');

/** The per-layer log line: SID, constraint ratio and lambda per image, steps, time. */
export function layerLogLine(r: LayerResult, index: number, total: number, alpha: number): string {
  const ratios = r.perImage.map((p) => fmt(p.constraintRatio, 3)).join(', ');
  const lambdas = r.perImage.map((p) => (Number.isFinite(p.lambda) ? p.lambda.toPrecision(3) : '?')).join(', ');
  const steps = r.perImage.map((p) => p.steps).join(', ');
  const secs = r.perImage.reduce((a, p) => a + (Number.isFinite(p.seconds) ? p.seconds : 0), 0);
  const maxed = r.perImage.filter((p) => p.stopReason === 'maxSteps').length;
  return `[${index + 1}/${total}] ${r.name} (${r.kind}): SID ${fmt(r.sid.mean)} ± ${fmt(r.sid.std)} nats/pixel; `
    + `constraint ratio ${ratios} (alpha ${alpha}); lambda ${lambdas}; steps ${steps}${maxed ? ` (${maxed} hit maxSteps)` : ''}; ${secs.toFixed(1)} s`;
}

async function readReportFile(file: string): Promise<Report | undefined> {
  try {
    return parseReport(await readFile(file, 'utf8'), file);
  } catch {
    return undefined;
  }
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
      // Partial reports are read and published strictly in order: a slow read of an older file must never land
      // after a newer report (the panel would step back from 'complete' to 'running').
      let published: Promise<void> = Promise.resolve();
      const publish = (report?: Report): void => {
        published = published.then(async () => {
          const r = report ?? (await readReportFile(job.reportPath));
          if (r) ctx.fireReportChanged({ path: job.reportPath, report: r });
        });
      };
      const onEvent = (e: AnalysisEvent): void => {
        switch (e.type) {
          case 'started':
            total = e.layers.length;
            log.info(`${job.label}: backend ${e.backend}, ${e.layers.length} layers, ${e.images} images, started after ${Date.now() - t0} ms`);
            progress.report({ message: `${e.layers.length} layers × ${e.images} images (${e.backend})` });
            started = true;
            publish();
            break;
          case 'layerStarted':
            run.setProgress(`${e.layer} ${e.index + 1}/${e.total}`);
            progress.report({ message: `${plainMessage(e.layer)} (${e.index + 1}/${e.total})` });
            break;
          case 'step': {
            // The worker sends at most ~10 per second; the notification needs fewer.
            const now = Date.now();
            if (now - lastStepReport < 250) break;
            lastStepReport = now;
            progress.report({ message: `${plainMessage(e.layer)} · image ${e.image + 1} · step ${e.step}/${e.maxSteps} · ratio ${fmt(e.ratio, 2)}` });
            break;
          }
          case 'layerDone':
            log.info(`${job.label}: ${layerLogLine(e.result, e.index, e.total, job.settings.alpha)}`);
            progress.report({ increment: 100 / Math.max(1, e.total), message: `${plainMessage(e.layer)} done (${e.index + 1}/${e.total})` });
            publish();
            break;
          case 'done':
            publish(e.report);
            break;
        }
      };
      const params: AnalyzeParams = { modelPath: job.modelPath, images: job.images, settings: job.settings, reportPath: job.reportPath };
      log.info(`${job.label}: analysing ${job.modelPath} on ${job.images.length} images -> ${job.reportPath}`);
      try {
        const result = await ctx.pool(job.workers).run(params, { onEvent, signal: run.controller.signal });
        await published;
        const report = await readReportFile(result.reportPath);
        if (report) ctx.fireReportChanged({ path: result.reportPath, report });
        const secs = ((Date.now() - t0) / 1000).toFixed(1);
        if (result.status === 'cancelled') {
          const done = report?.layers.length ?? 0;
          log.info(`${job.label}: cancelled after ${secs} s; ${done} of ${total || '?'} layers kept`);
          if (!started) return { status: 'cancelled', report: undefined };
          return { status: 'cancelled', report };
        }
        log.info(`${job.label}: complete in ${secs} s`);
        return { status: 'complete', report };
      } catch (e) {
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

interface PoolError {
  code?: string;
  message?: string;
  reportPath?: string;
}

async function showAnalysisError(ctx: Ctx, job: AnalysisJob, e: unknown): Promise<void> {
  const err = (e ?? {}) as PoolError;
  // The pool's crash message names the kept report itself; the notification offers a button instead.
  const message = plainMessage(String(err.message ?? e).replace(/; the finished layers are kept in .*$/, ''));
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
