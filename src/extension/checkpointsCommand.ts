/**
 * "Compare Checkpoints in Folder…": the checkpoints of one training run (a folder of `epoch-03.onnx`,
 * `saved-model-05-0.98.hdf5`, `ckpt_5/model.json` …, see checkpoints.ts) analysed one after the other in epoch order,
 * with the same settings and images, each reusing its saved report when the model and settings are unchanged. One
 * panel shows them: SID (and RU) per layer against epoch, filling in as each checkpoint finishes, beside the
 * per-layer compare view (one series per checkpoint).
 *
 * One cancellable progress notification for the whole run ("checkpoint i/n: layer …"); Cancel (or Cancel Analysis,
 * or closing the panel) stops it and keeps what finished. A checkpoint that fails (a bad file) gets one error line
 * naming it, and the others go on.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import * as vscode from 'vscode';
import type { AnalysisEvent } from '../engine/events';
import type { Report } from '../engine/report';
import type { AnalyzeParams, ReportSource } from '../protocol';
import { commonLayers } from '../../webview/report/epochData';
import { layerLogLine, markFailed, poolErrorText, readReportFile, reportPublisher, runInPool, warningText } from './analysis';
import { analysisInputs, planReport, runChoice, settingsOrShow, type ReportPlan, type RunChoice } from './analyzeCommands';
import { listCheckpoints, type Checkpoint, type CheckpointListing } from './checkpoints';
import type { Ctx } from './ctx';
import { chooseImages } from './inputs';
import { plainMessage } from './messages';
import { showError } from './notify';
import { panelHooks } from './openReport';
import { ReportPanel } from './panel';

type Progress = vscode.Progress<{ message?: string; increment?: number }>;

/** The folder the command works on: the one clicked in the Explorer (a file's folder), or one picked. */
async function folderOf(uri: vscode.Uri | undefined): Promise<string | undefined> {
  if (uri instanceof vscode.Uri) {
    const st = await stat(uri.fsPath).catch(() => undefined);
    return st && !st.isDirectory() ? path.dirname(uri.fsPath) : uri.fsPath;
  }
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: false,
    canSelectFolders: true,
    canSelectMany: false,
    openLabel: 'Compare Checkpoints',
    title: 'infodiscard: folder of checkpoints of one training run',
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return picked?.[0]?.fsPath;
}

/** What the listing found, in the log: the order, and what it skipped or left out. */
function logListing(ctx: Ctx, name: string, listing: CheckpointListing): void {
  const log = ctx.log;
  const cps = listing.checkpoints;
  const order = listing.axis === 'epoch'
    ? `epochs ${cps.map((c) => c.epoch).join(', ')}`
    : 'no epoch number in their names: taken in name order';
  log.info(`${name}: ${cps.length} checkpoints in ${listing.folder} (${order}): ${cps.map((c) => c.name).join(', ')}`);
  for (const s of listing.skipped) log.warn(`${name}: skipped ${s.path}: ${s.reason}`);
  for (const l of listing.leftOut) log.info(`${name}: left out ${l.name}: ${l.reason}`);
  for (const d of listing.duplicates) log.info(`${name}: epoch ${d.epoch} appears ${d.names.length} times (${d.names.join(', ')}); all are charted`);
}

export async function compareCheckpoints(ctx: Ctx, uri?: vscode.Uri): Promise<void> {
  try {
    const folder = await folderOf(uri);
    if (!folder) return;
    const listing = await listCheckpoints(folder);
    const name = path.basename(folder) || folder;
    logListing(ctx, name, listing);
    const scope = vscode.Uri.file(listing.checkpoints[0].path);
    const settings = settingsOrShow(ctx, scope);
    if (!settings) return;
    const images = await chooseImages(ctx, settings.images, scope);
    if (!images) return;
    ctx.log.info(`images: ${images.label} (${images.files.length} files)`);
    const choice = await runChoice(ctx, settings, images, scope);
    await runCheckpoints(ctx, name, listing, choice);
  } catch (e) {
    showError(ctx, e);
  }
}

/** What became of one checkpoint. */
type Outcome = 'reused' | 'complete' | 'cancelled' | 'failed';

interface RunState {
  ctx: Ctx;
  name: string;
  n: number;
  controller: AbortController;
  progress: Progress;
  /** The reports the run has (reused, finished, partial), by checkpoint. */
  reports: Map<Checkpoint, Report>;
  warnings: number;
}

/** One error line naming the checkpoint (log and notification); the run goes on. */
function failed(run: RunState, cp: Checkpoint, index: number, e: unknown): void {
  const message = poolErrorText(e);
  const detail = (e as { detail?: unknown } | null)?.detail;
  run.ctx.log.error(`${run.name}: checkpoint ${index + 1}/${run.n} ${cp.name} failed: ${message}`);
  if (typeof detail === 'string' && detail) run.ctx.log.debug(detail);
  void vscode.window.showErrorMessage(`infodiscard: checkpoint ${plainMessage(cp.name)} failed: ${message}`, 'Show Log').then((pick) => {
    if (pick) run.ctx.log.show(true);
  });
}

function warn(run: RunState, label: string, text: string): void {
  run.ctx.log.warn(`${label}: ${text}`);
  // One notification for the whole run; the rest are in the log.
  if (run.warnings++ > 0) return;
  void vscode.window.showWarningMessage(`infodiscard: ${plainMessage(label)}: ${plainMessage(text)}`, 'Show Log').then((pick) => {
    if (pick) run.ctx.log.show(true);
  });
}

/** Analyses one checkpoint in the worker pool, reporting into the run's progress notification. */
async function analyse(run: RunState, cp: Checkpoint, index: number, plan: ReportPlan, choice: RunChoice): Promise<Outcome> {
  const { ctx, progress, n } = run;
  const log = ctx.log;
  const share = 100 / n;
  const head = `checkpoint ${index + 1}/${n}`;
  const handle = ctx.runs.add(cp.label, run.controller, plan.reportPath);
  const t0 = Date.now();
  let lastStep = 0;
  let given = 0;
  let layerPos = '';
  const { publish, settled } = reportPublisher(ctx, plan.reportPath);
  const say = (message: string, increment?: number): void => progress.report({ message: `${head}: ${message} · ${plainMessage(cp.label)}`, ...(increment ? { increment } : {}) });
  const onEvent = (e: AnalysisEvent): void => {
    switch (e.type) {
      case 'started':
        log.info(`${cp.label}: backend ${e.backend}, ${e.layers.length} layers, ${e.images} images, started after ${Date.now() - t0} ms`);
        say(`${e.layers.length} layers × ${e.images} images`);
        publish();
        break;
      case 'layerStarted':
        layerPos = `${e.index + 1}/${e.total}`;
        handle.setProgress(`${e.layer} ${layerPos}`);
        say(`layer ${plainMessage(e.layer)} (${layerPos})`);
        break;
      case 'step': {
        const now = Date.now();
        if (now - lastStep < 250) break;
        lastStep = now;
        say(`layer ${plainMessage(e.layer)} (${layerPos})${e.metric === 'ru' ? ' · RU' : ''} · image ${e.image + 1} · step ${e.step}/${e.maxSteps}`);
        break;
      }
      case 'phase':
        if (e.phase !== 'sid') say(`layer ${plainMessage(e.layer)} (${layerPos}) · ${e.phase === 'decoder' ? 'training the RU decoder' : e.phase === 'ru' ? 'RU' : 'gradient baselines'}`);
        break;
      case 'decoderEpoch':
        log.info(`${cp.label}: ${e.layer}: decoder epoch ${e.epoch}/${e.maxEpochs}, held-out loss ${e.heldOutLoss.toPrecision(3)}`);
        break;
      case 'warning':
        warn(run, cp.label, warningText(e));
        break;
      case 'layerDone': {
        log.info(`${cp.label}: ${layerLogLine(e.result, e.index, e.total, choice.settings.analysis.alpha)}`);
        const step = share / Math.max(1, e.total);
        given += step;
        say(`layer ${plainMessage(e.layer)} done (${e.index + 1}/${e.total})`, step);
        publish();
        break;
      }
      case 'done':
        publish(e.report);
        break;
    }
  };
  const params: AnalyzeParams = { modelPath: cp.path, reportPath: plan.reportPath, ...analysisInputs(choice, plan) };
  log.info(`${cp.label}: ${head}, epoch ${cp.epoch}: analysing ${cp.path} -> ${plan.reportPath}`);
  say('starting');
  try {
    const result = await runInPool(ctx, params, choice.settings, { onEvent, signal: run.controller.signal });
    await settled();
    const report = await readReportFile(result.reportPath);
    if (report) {
      run.reports.set(cp, report);
      ctx.fireReportChanged({ path: result.reportPath, report });
    }
    const secs = ((Date.now() - t0) / 1000).toFixed(1);
    if (result.status === 'cancelled') {
      log.info(`${cp.label}: cancelled after ${secs} s; ${report?.layers.length ?? 0} layers kept`);
      handle.finish('cancelled', `${report?.layers.length ?? 0} layers kept`);
      return 'cancelled';
    }
    log.info(`${cp.label}: complete in ${secs} s`);
    handle.finish('complete', `${report?.layers.length ?? 0} layers`);
    return 'complete';
  } catch (e) {
    await settled();
    // The layers finished before the failure stay in their report: show them.
    // A report left 'running' by a worker that died says failed, in the file and the panel.
    const partial = (e as { reportPath?: unknown } | null)?.reportPath;
    if (typeof partial === 'string') await markFailed(ctx, partial, poolErrorText(e));
    const report = typeof partial === 'string' ? await readReportFile(partial) : undefined;
    if (report) run.reports.set(cp, report);
    handle.finish('failed', poolErrorText(e));
    failed(run, cp, index, e);
    return 'failed';
  } finally {
    handle.dispose();
    if (share - given > 1e-9) progress.report({ increment: share - given });
  }
}

/** Plans, opens the panel and analyses the checkpoints in epoch order, under one progress notification. */
async function runCheckpoints(ctx: Ctx, name: string, listing: CheckpointListing, choice: RunChoice): Promise<void> {
  const cps = listing.checkpoints;
  const n = cps.length;
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `SID of ${n} checkpoints in ${plainMessage(name)}`, cancellable: true },
    async (progress, token) => {
      const controller = new AbortController();
      const sub = token.onCancellationRequested(() => controller.abort());
      const run: RunState = { ctx, name, n, controller, progress, reports: new Map(), warnings: 0 };
      const outcomes = new Map<Checkpoint, Outcome>();
      let panel: ReportPanel | undefined;
      try {
        for (const note of choice.notes) warn(run, name, note);
        // Report paths first (hashing the checkpoints), so the panel opens with every checkpoint before any analysis.
        const planned: { cp: Checkpoint; index: number; plan: ReportPlan }[] = [];
        for (const [index, cp] of cps.entries()) {
          if (controller.signal.aborted) break;
          progress.report({ message: `checkpoint ${index + 1}/${n}: looking for a saved report · ${plainMessage(cp.label)}` });
          try {
            planned.push({ cp, index, plan: await planReport(ctx, vscode.Uri.file(cp.path), choice) });
          } catch (e) {
            outcomes.set(cp, 'failed');
            failed(run, cp, index, e);
          }
        }
        if (planned.length === 0 || controller.signal.aborted) return;
        const sources: ReportSource[] = planned.map(({ cp, plan }) => ({ path: plan.reusable?.path ?? plan.reportPath, label: cp.label, epoch: cp.epoch }));
        const known = new Map<string, Report>();
        for (const { cp, plan } of planned) {
          if (!plan.reusable) continue;
          known.set(plan.reusable.path, plan.reusable.report);
          run.reports.set(cp, plan.reusable.report);
        }
        panel = ReportPanel.createOrShow(ctx, sources, panelHooks(ctx), known, { folder: listing.folder, axis: listing.axis });
        // Progress for the checkpoints that failed before the panel opened.
        for (const cp of cps) if (outcomes.get(cp) === 'failed') progress.report({ increment: 100 / n });

        for (const { cp, index, plan } of planned) {
          // Cancelled, or the panel was closed (which also cancels a running analysis).
          if (controller.signal.aborted || !ReportPanel.all().includes(panel)) break;
          if (plan.reusable) {
            const more = plan.reusable.path !== plan.reportPath ? ' (it measured more metrics)' : '';
            ctx.log.info(`${cp.label}: model and settings unchanged, reusing ${plan.reusable.path}${more}`);
            progress.report({ increment: 100 / n, message: `checkpoint ${index + 1}/${n}: saved report · ${plainMessage(cp.label)}` });
            outcomes.set(cp, 'reused');
            continue;
          }
          const outcome = await analyse(run, cp, index, plan, choice);
          outcomes.set(cp, outcome);
          if (outcome === 'cancelled') break;
        }
      } finally {
        sub.dispose();
        const cancelled = controller.signal.aborted || (panel !== undefined && !ReportPanel.all().includes(panel));
        summarise(run, listing, outcomes, cancelled);
        ctx.releaseWorkersIfUnused({ afterCancel: controller.signal.aborted });
      }
    },
  );
}

/** The run in one log line, and the layers the epoch chart leaves out. */
function summarise(run: RunState, listing: CheckpointListing, outcomes: Map<Checkpoint, Outcome>, cancelled: boolean): void {
  const count = (o: Outcome): number => [...outcomes.values()].filter((v) => v === o).length;
  const parts = [`${count('complete')} analysed`, `${count('reused')} reused`];
  if (count('failed')) parts.push(`${count('failed')} failed`);
  if (count('cancelled')) parts.push(`${count('cancelled')} cancelled`);
  const notRun = listing.checkpoints.length - outcomes.size;
  if (notRun) parts.push(`${notRun} not run`);
  run.ctx.log.info(`${run.name}: ${cancelled ? 'cancelled' : 'done'}: ${parts.join(', ')} of ${listing.checkpoints.length} checkpoints`);
  const reports = listing.checkpoints.filter((cp) => run.reports.has(cp)).map((cp) => run.reports.get(cp)!);
  if (reports.length < 2) return;
  const { layers, omitted } = commonLayers(reports);
  if (omitted.length) {
    run.ctx.log.info(`${run.name}: the epoch chart shows the ${layers.length} layers all ${reports.length} checkpoints have; left out (not in every checkpoint): ${omitted.join(', ')}`);
  }
}
