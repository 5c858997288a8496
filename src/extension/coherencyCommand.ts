/**
 * "Check Coherency (Rescale a Conv Pair)…": the paper's coherency check (Sec. 4) from VS Code. Pick a model, the
 * images and a conv layer L (from the worker's list of the layers it can rescale); the worker rescales L (kernel and
 * bias / 4) and the next conv/dense layer (kernel x 4), which leaves the network output unchanged, analyses the
 * original and the rescaled model with the same settings and seed, and compares them layer by layer. The two
 * reports open in a compare panel; a notification gives the verdicts, with the table and the JSON a click away.
 *
 * Files go to `<reports folder>/coherency/` (outside the folder the report lists and hovers read, so a rescaled
 * model's report is never mistaken for the model's own): `<model>-<sha>-<settings>[-tags]-<layer>-x4-result.json`
 * (the engine's CoherencyResult, both reports included), `...-original.json` and `...-rescaled.json`.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as vscode from 'vscode';
import { modelToAnalyse } from './pytorch';
import { UserError } from '../engine/errors';
import type { AnalysisEvent } from '../engine/events';
import type { MetricName, Report } from '../engine/report';
import { parseReport } from '../engine/reportFile';
import type { CoherencyOutcome, CoherencyParams, CoherencyPhase, CoherencyRun, ModelLayer, ModelLayers, ReportSource } from '../protocol';
import { layerLogLine, warningText } from './analysis';
import { DECODERS_FOLDER, pickModel, planReport, runChoice, settingsOrShow, type RunChoice } from './analyzeCommands';
import { EXTRA_METRICS } from './config';
import type { Ctx } from './ctx';
import { chooseImages } from './inputs';
import { plainMessage } from './messages';
import { showError } from './notify';
import { panelHooks } from './openReport';
import { ReportPanel } from './panel';
import { modelName } from './reportStore';
import { AnalysisError, type CoherencyRunResult } from '../worker/client';

/**
 * The paper's rescale factor k. (The engine's DEFAULT_COHERENCY_FACTOR is the same number; its module loads
 * TensorFlow.js, which the extension bundle must not.)
 */
export const COHERENCY_FACTOR = 4;
/** Sub-folder of the reports folder that holds the coherency results and their reports. */
export const COHERENCY_FOLDER = 'coherency';

/** File names the explorer and editor menus offer the command on (as package.json's "when" clauses). */
const MODEL_FILE = /(^model\.json$|^saved_model\.pb$|\.(h5|hdf5|keras|onnx|pt|pth|pt2)$)/i;

const METRIC_TEXT: Record<CoherencyOutcome['summary'][number]['metric'], string> = {
  sid: 'SID',
  ru: 'RU',
  gradNorm: 'gradient norm',
  gradCam: 'Grad-CAM',
  cam: 'CAM',
};

const PHASE_TEXT: Record<CoherencyPhase, string> = {
  check: 'checking that the rescale leaves the network output unchanged',
  original: 'analysing the original model',
  rescaled: 'analysing the rescaled model',
};

/** The model in the active editor (a text editor, or any tab with a file, such as a binary .h5), if it is one. */
function activeModel(): vscode.Uri | undefined {
  const candidates: unknown[] = [
    vscode.window.activeTextEditor?.document?.uri,
    (vscode.window.tabGroups?.activeTabGroup?.activeTab?.input as { uri?: unknown } | undefined)?.uri,
  ];
  for (const u of candidates) {
    if (u instanceof vscode.Uri && u.scheme === 'file' && MODEL_FILE.test(path.basename(u.fsPath))) return u;
  }
  return undefined;
}

/** "a, b, c, ... (9 in all)" of untrusted names. */
function listNames(names: string[], max = 4): string {
  return names.slice(0, max).join(', ') + (names.length > max ? `, ... (${names.length} in all)` : '');
}

/** The label of the rescaled series: "rescaled (conv1/4, conv2×4)". */
export function rescaledLabel(first: string, second: string, factor = COHERENCY_FACTOR): string {
  return `rescaled (${first}/${factor}, ${second}×${factor})`;
}

/**
 * The verdicts in one line: "Coherency: SID unchanged at 7/7 layers; gradient norm changed at 2 layers as expected".
 * Layer names are untrusted: pass the result through plainMessage before showing it.
 */
export function coherencySummaryText(outcome: Pick<CoherencyOutcome, 'summary' | 'outputCheck'>): string {
  const parts = outcome.summary.map((s) => {
    const name = METRIC_TEXT[s.metric] ?? s.metric;
    const n = s.changed.length;
    const layers = (k: number) => `${k} layer${k === 1 ? '' : 's'}`;
    if (s.metric === 'sid' || s.metric === 'ru') {
      return n === 0 ? `${name} unchanged at ${s.unchanged}/${s.layers} layers` : `${name} changed at ${n} of ${layers(s.layers)} (${listNames(s.changed)}): not coherent`;
    }
    const how = s.asExpected ? 'as expected' : 'not as expected';
    return n === 0 ? `${name} unchanged at ${s.unchanged}/${s.layers} layers ${how}` : `${name} changed at ${layers(n)} ${how}`;
  });
  const o = outcome.outputCheck;
  const output = o.passed ? '' : `; but the rescale changed the network output (relative difference ${o.relativeDiff.toPrecision(2)} > ${o.tolerance}), so this is no coherency check`;
  return `Coherency: ${parts.join('; ') || 'no layer compared'}${output}`;
}

/** The one-line reason no layer of `model` can be the first of the pair, or undefined when some can. */
export function noRescalableLayer(model: ModelLayers, file: string): UserError | undefined {
  if (model.layers.some((l) => l.rescale)) return undefined;
  if (model.rescaleUnsupported) return new UserError(model.rescaleUnsupported, file);
  const convs = model.layers.filter((l) => l.conv);
  if (convs.length === 0) return new UserError('has no conv layers; the coherency check rescales a pair of neighbouring conv layers', file);
  const why = convs.map((l) => `"${l.name}": ${l.notRescalable ?? 'not rescalable'}`);
  return new UserError(`no conv layer can be rescaled (${why.slice(0, 2).join('; ')}${why.length > 2 ? `; ... (${why.length} conv layers)` : ''})`, file);
}

interface LayerItem extends vscode.QuickPickItem {
  layer: ModelLayer;
}

function shapeText(shape: (number | null)[]): string {
  return `[${shape.map((d) => d ?? '?').join(', ')}]`;
}

/** Asks for the conv layer to scale down, among the rescalable ones. */
async function pickFirst(label: string, model: ModelLayers): Promise<ModelLayer | undefined> {
  const items: LayerItem[] = model.layers.filter((l) => l.rescale).map((l) => {
    const pair = l.rescale!;
    const between = pair.between.length > 0 ? `, through ${listNames(pair.between, 3)}` : '';
    return {
      label: plainMessage(l.name, 120),
      description: plainMessage(`${l.kind} ${shapeText(l.outputShape)}`, 120),
      detail: plainMessage(`kernel and bias /${COHERENCY_FACTOR}; "${pair.second}" kernel ×${COHERENCY_FACTOR}${between}`, 200),
      layer: l,
    };
  });
  const picked = await vscode.window.showQuickPick(items, {
    title: `infodiscard: coherency check of ${plainMessage(label, 80)}`,
    placeHolder: `The conv layer to scale down by ${COHERENCY_FACTOR} (the next conv or dense layer is scaled up by ${COHERENCY_FACTOR}; the output stays the same)`,
    matchOnDescription: true,
    ignoreFocusOut: true,
  });
  return picked?.layer;
}

/** settings.metrics with baselines added (in the engine's order); whether they had to be added. */
function withBaselines(metrics: MetricName[] | undefined): { metrics: MetricName[]; added: boolean } {
  const have = metrics ?? ['sid'];
  if (have.includes('baselines')) return { metrics: have, added: false };
  return { metrics: (['sid', ...EXTRA_METRICS] as MetricName[]).filter((m) => m === 'sid' || m === 'baselines' || have.includes(m)), added: true };
}

/** Where the three files go: beside the model's reports, in the coherency folder, keyed like a report. */
export function coherencyPaths(plannedReportPath: string, reportsFolder: string, first: string, factor = COHERENCY_FACTOR) {
  const key = path.basename(plannedReportPath, '.json');
  const layer = first.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[.]+/, '').slice(0, 40) || 'layer';
  const base = path.join(reportsFolder, COHERENCY_FOLDER, `${key}-${layer}-x${factor}`);
  return { resultPath: `${base}-result.json`, originalReportPath: `${base}-original.json`, rescaledReportPath: `${base}-rescaled.json` };
}

/** A failed request: bad input is one line (naming the file), anything else offers the log. */
function showRunError(ctx: Ctx, label: string, e: unknown): void {
  const err = (e ?? {}) as { code?: string; message?: string };
  const message = plainMessage(String(err.message ?? e));
  if (err.code === 'user') {
    ctx.log.warn(`${label}: coherency: ${message}`);
    void vscode.window.showErrorMessage(`infodiscard: ${message}`);
    return;
  }
  if (!(e instanceof AnalysisError)) {
    showError(ctx, e);
    return;
  }
  ctx.log.error(`${label}: coherency: ${err.code ?? 'error'}: ${message}`);
  void vscode.window.showErrorMessage(`infodiscard: coherency check of ${plainMessage(label)} failed: ${message.replace(/\.$/, '')}.`, 'Show Log').then((pick) => {
    if (pick) ctx.log.show(true);
  });
}

async function readReportFile(file: string): Promise<Report> {
  return parseReport(await readFile(file, 'utf8'), file);
}

/** Runs the check in the pool with a cancellable progress notification; errors are shown here. */
function runCheck(ctx: Ctx, label: string, pairText: string, params: CoherencyParams, workers: number, notes: string[]): Thenable<CoherencyRunResult | undefined> {
  const log = ctx.log;
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Coherency of ${plainMessage(label)}: ${plainMessage(pairText)}`, cancellable: true },
    async (progress, token) => {
      const run = ctx.runs.add(`${label} coherency`);
      const cancelSub = token.onCancellationRequested(() => run.controller.abort());
      const t0 = Date.now();
      let warnings = 0;
      let lastStep = 0;
      const warn = (text: string): void => {
        log.warn(`${label}: ${text}`);
        if (warnings++ > 0) return;
        void vscode.window.showWarningMessage(`infodiscard: ${plainMessage(label)}: ${plainMessage(text)}`, 'Show Log').then((pick) => {
          if (pick === 'Show Log') log.show(true);
        });
      };
      const onPhase = (phase: CoherencyPhase): void => {
        log.info(`${label}: coherency: ${PHASE_TEXT[phase]}`);
        run.setProgress(phase);
        progress.report({ message: PHASE_TEXT[phase] });
      };
      const onEvent = (e: AnalysisEvent, which: CoherencyRun | undefined): void => {
        const tag = which ?? 'check';
        switch (e.type) {
          case 'started':
            log.info(`${label} (${tag}): backend ${e.backend}, ${e.layers.length} layers, ${e.images} images`);
            if (which === 'original') for (const note of notes) warn(note);
            break;
          case 'layerStarted':
            run.setProgress(`${tag} ${e.layer} ${e.index + 1}/${e.total}`);
            progress.report({ message: `${tag}: ${plainMessage(e.layer)} (${e.index + 1}/${e.total})` });
            break;
          case 'step': {
            const now = Date.now();
            if (now - lastStep < 250) break;
            lastStep = now;
            progress.report({ message: `${tag}: ${plainMessage(e.layer)}${e.metric === 'ru' ? ' · RU' : ''} · image ${e.image + 1} · step ${e.step}/${e.maxSteps}` });
            break;
          }
          case 'phase':
            if (e.phase !== 'sid') progress.report({ message: `${tag}: ${plainMessage(e.layer)} · ${e.phase === 'decoder' ? 'training the RU decoder' : e.phase}` });
            break;
          case 'warning':
            warn(`${tag}: ${warningText(e)}`);
            break;
          case 'layerDone':
            log.info(`${label} (${tag}): ${layerLogLine(e.result, e.index, e.total, params.settings.alpha)}`);
            // Two analyses: each layer of each is 1/(2 x layers) of the way.
            progress.report({ increment: 50 / Math.max(1, e.total), message: `${tag}: ${plainMessage(e.layer)} done (${e.index + 1}/${e.total})` });
            break;
          default:
            break;
        }
      };
      try {
        const result = await ctx.pool(workers).runCoherency(params, { onEvent, onPhase, signal: run.controller.signal });
        const secs = ((Date.now() - t0) / 1000).toFixed(1);
        if (result.status === 'cancelled') log.info(`${label}: coherency check cancelled after ${secs} s; nothing was written`);
        else log.info(`${label}: coherency check complete in ${secs} s -> ${result.resultPath}`);
        return result;
      } catch (e) {
        showRunError(ctx, label, e);
        return undefined;
      } finally {
        cancelSub.dispose();
        run.dispose();
        ctx.releaseWorkersIfUnused({ afterCancel: run.controller.signal.aborted });
      }
    },
  );
}

/** The model's layers from a worker (the model loads there); undefined when cancelled or failed (shown). */
async function listLayers(ctx: Ctx, model: vscode.Uri, label: string, choice: RunChoice): Promise<ModelLayers | undefined> {
  try {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: `infodiscard: reading the layers of ${plainMessage(label)}` },
      () => ctx.pool(choice.settings.workers).listLayers({ modelPath: model.fsPath, backend: choice.settings.analysis.backend }),
    );
    return result.status === 'complete' ? result.model : undefined;
  } catch (e) {
    showRunError(ctx, label, e);
    ctx.releaseWorkersIfUnused();
    return undefined;
  }
}

export async function checkCoherency(ctx: Ctx, uri?: vscode.Uri): Promise<void> {
  try {
    const picked = uri instanceof vscode.Uri ? uri : activeModel() ?? (await pickModel('Check Coherency', 'infodiscard: model for the coherency check (TensorFlow.js model.json, Keras .h5/.keras/.json, ONNX, PyTorch .pt/.pt2)'));
    if (!picked) return;
    // A PyTorch file is checked on its ONNX export.
    const model = await modelToAnalyse(ctx, picked);
    if (!model) return;
    const settings = settingsOrShow(ctx, model);
    if (!settings) return;
    const images = await chooseImages(ctx, settings.images, model);
    if (!images) return;
    const label = modelName(model.fsPath);
    ctx.log.info(`${label}: coherency check; images: ${images.label} (${images.files.length} files)`);
    const { metrics, added } = withBaselines(settings.analysis.metrics);
    if (added) {
      ctx.log.info(
        `${label}: coherency: measuring the baselines (gradient norm, Grad-CAM, CAM) too, although "infodiscard.metrics" does not list them: ` +
          'the paper\'s point is that gradient and CAM magnitudes change under the rescale while SID and RU do not',
      );
    }
    const choice = await runChoice(ctx, { ...settings, analysis: { ...settings.analysis, metrics } }, images, model);
    // Hashes the model (a missing or broken model fails here, naming the file) and gives the report key.
    const plan = await planReport(ctx, model, choice);

    const layers = await listLayers(ctx, model, label, choice);
    if (!layers) return;
    const none = noRescalableLayer(layers, model.fsPath);
    if (none) {
      for (const l of layers.layers.filter((x) => x.notRescalable)) ctx.log.info(`${label}: coherency: "${l.name}" (${l.kind}): ${l.notRescalable}`);
      throw none;
    }
    const first = await pickFirst(label, layers);
    if (!first) {
      ctx.releaseWorkersIfUnused();
      return;
    }
    const second = first.rescale!.second;
    const files = coherencyPaths(plan.reportPath, plan.folder, first.name);
    const ru = metrics.includes('ru');
    const params: CoherencyParams = {
      modelPath: model.fsPath,
      images: images.files.map((f) => f.path),
      settings: plan.settings,
      first: first.name,
      factor: COHERENCY_FACTOR,
      ...files,
      ...(ru ? { decoderCacheDir: path.join(plan.folder, DECODERS_FOLDER) } : {}),
      ...(ru && choice.trainImages ? { trainImages: choice.trainImages.map((f) => f.path) } : {}),
      ...(choice.boxesFile ? { boxesFile: choice.boxesFile.path } : {}),
      ...(Object.keys(choice.settings.imageOptions ?? {}).length > 0 ? { imageOptions: choice.settings.imageOptions } : {}),
    };
    const pairText = `${first.name}/${COHERENCY_FACTOR}, ${second}×${COHERENCY_FACTOR}`;
    ctx.log.info(`${label}: coherency: "${first.name}" kernel and bias /${COHERENCY_FACTOR}, "${second}" kernel ×${COHERENCY_FACTOR}; metrics ${metrics.join(', ')} -> ${files.resultPath}`);
    const result = await runCheck(ctx, label, pairText, params, choice.settings.workers, choice.notes);
    if (!result || result.status !== 'complete') return;

    const { outcome } = result;
    ctx.log.info(`${label}: coherency table:\n${outcome.table.trimEnd()}`);
    const sources: ReportSource[] = [
      { path: result.originalReportPath, label: 'original' },
      { path: result.rescaledReportPath, label: rescaledLabel(first.name, second, outcome.rescale.factor) },
    ];
    const reports = new Map<string, Report>();
    for (const s of sources) reports.set(s.path, await readReportFile(s.path));
    ReportPanel.createOrShow(ctx, sources, panelHooks(ctx), reports);

    const text = plainMessage(coherencySummaryText(outcome));
    const ok = outcome.coherent && outcome.summary.every((s) => s.asExpected);
    const buttons = ['Show Table', 'Open JSON'];
    const shown = ok ? vscode.window.showInformationMessage(`infodiscard: ${text}`, ...buttons) : vscode.window.showWarningMessage(`infodiscard: ${text}`, ...buttons);
    void shown.then(async (pick) => {
      try {
        if (pick === 'Show Table') {
          const doc = await vscode.workspace.openTextDocument({ content: outcome.table, language: 'plaintext' });
          await vscode.window.showTextDocument(doc);
        } else if (pick === 'Open JSON') {
          await vscode.window.showTextDocument(vscode.Uri.file(result.resultPath));
        }
      } catch (e) {
        showError(ctx, e);
      }
    });
  } catch (e) {
    showError(ctx, e);
  }
}
