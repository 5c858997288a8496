/**
 * "Analyze Model…" and "Compare Layers Across Models…": pick models (or saved reports), settings and images, reuse
 * a saved report when the model and settings are unchanged, otherwise analyse in a worker, and show the panel.
 */
import { constants as fsConstants } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import * as vscode from 'vscode';
import { UserError } from '../engine/errors';
import type { Report } from '../engine/report';
import { parseReport } from '../engine/reportFile';
import type { AnalyzeParams, ReportSource } from '../protocol';
import { runAnalysis } from './analysis';
import { chooseLayers } from './layerPicker';
import { MODEL_EXTENSIONS } from './checkpoints';
import { readSettings, type ExtensionSettings } from './config';
import type { Ctx } from './ctx';
import { boxesFileFor, chooseImages, DEFAULT_BOXES_FILE, skippedImagesNote, trainImagesFor, type ImageChoice } from './inputs';
import { exampleChoice, exampleFamilies, exampleItem, exampleRuns, familiesFolder, type ExampleFamily } from './examples';
import { profileSettings } from '../engine/preprocessing/presets';
import { profileForRun, storedProfile } from './preprocessing/prompt';
import { showError } from './notify';
import { ReportPanel } from './panel';
import { panelHooks } from './openReport';
import { modelToAnalyse } from './pytorch';
import { refreshKerasJsonFiles } from './kerasJsonMenu';
import { PYTORCH_EXTENSIONS } from '../engine/pytorch/detect';
import { allReportsFolders, metricKeys, modelName, reportFileName, reportsFolderFor, settingsHash, type ImageFile, type RunInputs } from './reportStore';

/** Trained RU decoders are cached in this folder inside the reports folder (the engine keys them by model, layer and settings). */
export const DECODERS_FOLDER = 'decoders';

export interface Resolved {
  /** Report file for this model, settings and images. */
  reportPath: string;
  report?: Report;
  status: 'reused' | 'complete' | 'cancelled' | 'failed';
}

/** Model files the engine opens (one loader each): shown in pickers and found for Compare (declared in checkpoints.ts). */
export { MODEL_EXTENSIONS };

/** The model to analyse when no file was given: the open editor's if it is one, else a file picker. */
export async function pickModel(
  openLabel = 'Analyze',
  title = 'infodiscard: model to analyse (TensorFlow.js model.json, Keras .h5/.keras/.json, ONNX, PyTorch .pt/.pt2)',
): Promise<vscode.Uri | undefined> {
  const uris = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel,
    title,
    filters: { Models: [...MODEL_EXTENSIONS, ...PYTORCH_EXTENSIONS] },
    defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
  });
  return uris?.[0];
}

/** Why a model could not be hashed, as one line naming it: missing, not JSON (a truncated file), or a missing shard. */
async function unhashableModel(modelPath: string): Promise<UserError> {
  const isJson = modelPath.toLowerCase().endsWith('.json');
  let text = '';
  try {
    if (isJson) text = await readFile(modelPath, 'utf8');
    else await access(modelPath, fsConstants.R_OK);
  } catch {
    return new UserError('cannot be read; check that it exists', modelPath);
  }
  if (!isJson) return new UserError('cannot be read', modelPath);
  try {
    JSON.parse(text);
  } catch (e) {
    return new UserError(`is not valid JSON (${(e as Error).message}); is it a complete TensorFlow.js model.json?`, modelPath);
  }
  return new UserError('cannot read one of the weight files it lists; check that they exist next to it', modelPath);
}

/** What a command analyses with: the settings, the images and the inputs of the opt-in metrics. */
export interface RunChoice {
  settings: ExtensionSettings;
  images: ImageChoice;
  /** RU: the decoders' training images beyond the analysis images (undefined: the analysis images alone). */
  trainImages?: ImageFile[];
  /** Concentration: the sidecar JSON of object regions (undefined: none given or found). */
  boxesFile?: ImageFile;
  /** Said once per run, as the engine's warnings are (e.g. concentration without any object region). */
  notes: string[];
  /** The layers to analyse (undefined: every layer); part of the report's key. */
  layers?: string[];
}

/** Resolves the opt-in metrics' inputs (training images, boxes file) for `settings` and the chosen images. */
export async function runChoice(ctx: Ctx, settings: ExtensionSettings, images: ImageChoice, scope: vscode.Uri | undefined): Promise<RunChoice> {
  const metrics = settings.analysis.metrics ?? ['sid'];
  const choice: RunChoice = { settings, images, notes: [] };
  const skipped = skippedImagesNote(images);
  if (skipped) choice.notes.push(skipped);
  if (metrics.includes('ru')) choice.trainImages = await trainImagesFor(ctx, settings.trainImages, scope, images);
  if (metrics.includes('concentration')) {
    choice.boxesFile = await boxesFileFor(settings.boxesFile, scope, images);
    if (!choice.boxesFile) {
      choice.notes.push(`concentration needs object regions: no ${DEFAULT_BOXES_FILE} beside the images; set "infodiscard.boxesFile" to a JSON file of boxes`);
    }
  }
  return choice;
}

function runInputs(choice: RunChoice): RunInputs {
  return {
    settings: choice.settings.analysis,
    images: choice.images.files,
    ...(choice.layers ? { layers: choice.layers } : {}),
    trainImages: choice.trainImages,
    boxesFile: choice.boxesFile,
    ...imageOptionsOf(choice),
  };
}

/** `infodiscard.resize` / `transparency` when set (absent: the engine's defaults, and the report keys stay as they were). */
function imageOptionsOf(choice: RunChoice): Pick<AnalyzeParams, 'imageOptions'> {
  const o = choice.settings.imageOptions;
  return o && Object.keys(o).length > 0 ? { imageOptions: o } : {};
}

/** Where a model's report for `choice` goes, and the saved report that already answers it, if any. */
export interface ReportPlan {
  /** The file a new analysis writes. */
  reportPath: string;
  /** A complete report of this model version with these settings and (at least) these metrics. */
  reusable?: { path: string; report: Report };
  /** Reports folder (RU decoders are cached in its "decoders" folder). */
  folder: string;
  /** The analysis settings the key was made from: the choice's, with the model's stored preprocessing applied. */
  settings: RunChoice['settings']['analysis'];
}

/**
 * The choice with the model's stored preprocessing profile applied (Compare, checkpoints: each model its own), unless
 * the choice is an example family's (its manifest decides) or the model has none stored.
 */
export async function withModelProfile(ctx: Ctx, model: vscode.Uri, choice: RunChoice): Promise<RunChoice> {
  const a = choice.settings.analysis;
  if (a.preprocessing?.source === 'manifest') return choice;
  const p = await storedProfile(ctx, choice.settings, model).catch(() => null);
  if (!p) return choice;
  return { ...choice, settings: { ...choice.settings, analysis: { ...a, ...profileSettings(p) } } };
}

export async function planReport(ctx: Ctx, model: vscode.Uri, given: RunChoice): Promise<ReportPlan> {
  const choice = await withModelProfile(ctx, model, given);
  const modelPath = model.fsPath;
  const sha = await ctx.store.modelHash(modelPath);
  if (sha === null) throw await unhashableModel(modelPath);
  const inputs = runInputs(choice);
  const key = settingsHash(inputs);
  const metrics = metricKeys(inputs);
  const folder = reportsFolderFor(choice.settings.reportsFolder, model, ctx.extension.globalStorageUri);
  const reportPath = path.join(folder, reportFileName(modelPath, sha, key, metrics));
  const found = await ctx.store.findReusableRun(folder, modelPath, sha, key, metrics);
  // The file is the same whichever layers are chosen (they are not in the key): a saved report answers this run only
  // when it has every chosen layer; otherwise the run resumes from it (the engine reuses the layers it has).
  const has = new Set([...(found?.report.layers ?? []), ...(found?.report.skippedLayers ?? [])].map((l) => l.name));
  const covers = !!found && (choice.layers ?? found.report.requestedLayers).every((n) => has.has(n));
  return { reportPath, ...(found && covers ? { reusable: found } : {}), folder, settings: choice.settings.analysis };
}

/** What an analysis of `choice` reads besides the model: the images, the settings and the opt-in metrics' inputs. */
export function analysisInputs(
  choice: RunChoice,
  plan: ReportPlan,
): Pick<AnalyzeParams, 'images' | 'settings' | 'layers' | 'trainImages' | 'decoderCacheDir' | 'boxesFile' | 'imageOptions'> {
  const ru = choice.settings.analysis.metrics?.includes('ru');
  return {
    images: choice.images.files.map((f) => f.path),
    ...(choice.layers ? { layers: choice.layers } : {}),
    settings: plan.settings,
    ...(ru ? { decoderCacheDir: path.join(plan.folder, DECODERS_FOLDER) } : {}),
    ...(ru && choice.trainImages?.length ? { trainImages: choice.trainImages.map((f) => f.path) } : {}),
    ...(choice.boxesFile ? { boxesFile: choice.boxesFile.path } : {}),
    ...imageOptionsOf(choice),
  };
}

/**
 * The report for one model: reused when a complete one for this model version, these settings and (at least)
 * these metrics exists, else computed.
 */
export async function ensureReport(
  ctx: Ctx,
  model: vscode.Uri,
  label: string,
  choice: RunChoice,
  onStarted?: (reportPath: string) => void,
  planned?: ReportPlan,
): Promise<Resolved> {
  const plan = planned ?? (await planReport(ctx, model, choice));
  if (plan.reusable) {
    const more = plan.reusable.path !== plan.reportPath ? ' (it measured more metrics)' : '';
    ctx.log.info(`${label}: model and settings unchanged, reusing ${plan.reusable.path}${more}`);
    return { reportPath: plan.reusable.path, report: plan.reusable.report, status: 'reused' };
  }
  const { reportPath } = plan;
  onStarted?.(reportPath);
  // Resume: the layers the report at this path already has are kept in the request (the engine reuses them when
  // model, settings and images match, so they cost nothing), so analysing other layers adds to the report.
  const layers = choice.layers ? await withEarlierLayers(reportPath, choice.layers) : undefined;
  const outcome = await runAnalysis(ctx, {
    modelPath: model.fsPath,
    label,
    reportPath,
    ...analysisInputs(choice, plan),
    ...(layers ? { layers } : {}),
    pool: choice.settings,
    notes: choice.notes,
  });
  if (outcome.status === 'failed') return { reportPath, status: 'failed' };
  return { reportPath, report: outcome.report, status: outcome.status };
}

/** `layers` plus the finished layers of the report at `reportPath` (the engine puts them in model order). */
async function withEarlierLayers(reportPath: string, layers: string[]): Promise<string[]> {
  let earlier: string[] = [];
  try {
    earlier = parseReport(await readFile(reportPath, 'utf8'), reportPath).layers.map((l) => l.name);
  } catch {
    // No earlier report (or not readable): nothing to keep.
  }
  return [...new Set([...earlier, ...layers])];
}

export function settingsOrShow(ctx: Ctx, scope: vscode.Uri | undefined): ExtensionSettings | undefined {
  try {
    return readSettings(scope);
  } catch (e) {
    showError(ctx, e);
    return undefined;
  }
}

/** The first-order preview of `choice`: SID maps only (RU has no preview; baselines do not depend on the search). */
export function previewChoice(choice: RunChoice): RunChoice {
  const a = choice.settings.analysis;
  const metrics = (a.metrics ?? ['sid']).filter((m) => m === 'sid' || m === 'concentration');
  return { ...choice, trainImages: undefined, settings: { ...choice.settings, analysis: { ...a, preview: true, warmStart: false, metrics, decoder: null } } };
}

/**
 * `infodiscard.previewFirst`: the preview (seconds per layer on smooth networks), then the search, in one panel that
 * charts both, the optimised series filling in beside the preview. False when the setting is off or does not apply
 * (the search is already the preview), and the caller analyses as usual.
 */
async function previewThenRefine(ctx: Ctx, model: vscode.Uri, label: string, choice: RunChoice): Promise<boolean> {
  if (!choice.settings.previewFirst || choice.settings.analysis.preview) return false;
  const quick = previewChoice(choice);
  const [quickPlan, plan] = [await planReport(ctx, model, quick), await planReport(ctx, model, choice)];
  const previewLabel = `${label} (first-order preview)`;
  const sources = [{ path: quickPlan.reusable?.path ?? quickPlan.reportPath, label: previewLabel }, { path: plan.reusable?.path ?? plan.reportPath, label }];
  const reports = new Map<string, Report>();
  for (const p of [quickPlan, plan]) if (p.reusable) reports.set(p.reusable.path, p.reusable.report);
  const panel = ReportPanel.createOrShow(ctx, sources, panelHooks(ctx), reports);
  for (const [run, runPlan, runLabel] of [[quick, quickPlan, previewLabel], [choice, plan, label]] as const) {
    const result = await ensureReport(ctx, model, runLabel, run, undefined, runPlan);
    if (result.report) panel.update(result.reportPath, result.report);
    if (result.status === 'cancelled' || result.status === 'failed') break;
  }
  return true;
}

export async function analyzeModel(ctx: Ctx, uri?: vscode.Uri): Promise<void> {
  try {
    const picked = uri instanceof vscode.Uri ? uri : await pickModel();
    if (!picked) return;
    // A PyTorch file is exported to ONNX first (or its snippet offered, for weights only).
    const model = await modelToAnalyse(ctx, picked);
    if (!model) return;
    if (/\.(json|h5|hdf5)$/i.test(picked.fsPath)) void refreshKerasJsonFiles().catch(() => undefined);
    const settings = settingsOrShow(ctx, picked);
    if (!settings) return;
    const images = await chooseImages(ctx, settings.images, model);
    if (!images) return;
    ctx.log.info(`images: ${images.label} (${images.files.length} files)`);
    const choice = await runChoice(ctx, settings, images, model);
    // The model's preprocessing: stored, else asked for now (first analysis), with the check's top predictions.
    const profile = await profileForRun(ctx, settings, model, images.files.map((f) => f.path));
    if (!profile) return;
    choice.settings = { ...choice.settings, analysis: { ...choice.settings.analysis, ...profileSettings(profile) } };
    ctx.log.info(`preprocessing: ${profile.preset} (${profile.source})`);
    const label = modelName(picked.fsPath);
    const layers = await chooseLayers(ctx, model.fsPath, label, settings);
    if (layers === 'cancel') return;
    if (layers) {
      choice.layers = layers;
      ctx.log.info(`${label}: layers ${layers.join(', ')}`);
    }
    if (await previewThenRefine(ctx, model, label, choice)) return;
    let panel: ReportPanel | undefined;
    // The panel opens when the analysis starts (it fills in layer by layer), or at once for a reused report.
    const result = await ensureReport(ctx, model, label, choice, (reportPath) => {
      panel = ReportPanel.createOrShow(ctx, [{ path: reportPath, label }], panelHooks(ctx));
    });
    if (result.report) {
      const reports = new Map([[result.reportPath, result.report]]);
      panel ??= ReportPanel.createOrShow(ctx, [{ path: result.reportPath, label }], panelHooks(ctx), reports);
      panel.update(result.reportPath, result.report);
    } else if (panel && result.status === 'failed') {
      // Nothing was written: the empty panel has nothing to show.
      const exists = await readFile(result.reportPath).then(() => true, () => false);
      if (!exists) panel.dispose();
    }
  } catch (e) {
    showError(ctx, e);
  }
}

/** Distinct legend labels: the model name, with its parent folder and then a number where names repeat. */
export function distinctLabels(paths: string[]): string[] {
  const base = paths.map((p) => modelName(p));
  const count = (list: string[], v: string): number => list.filter((x) => x === v).length;
  const withParent = paths.map((p, i) => {
    const parts = p.split(/[\\/]/).filter(Boolean);
    const drop = /^model\.json$/i.test(parts[parts.length - 1] ?? '') ? 2 : 1;
    const parent = parts[parts.length - drop - 1];
    return parent ? `${parent}/${base[i]}` : base[i];
  });
  const step = base.map((b, i) => (count(base, b) > 1 ? withParent[i] : b));
  const seen = new Map<string, number>();
  return step.map((l) => {
    if (count(step, l) === 1) return l;
    const k = (seen.get(l) ?? 0) + 1;
    seen.set(l, k);
    return `${l} (${k})`;
  });
}

interface CompareItem extends vscode.QuickPickItem {
  uri?: vscode.Uri;
  browse?: boolean;
  example?: ExampleFamily;
  /** The example family across all its trained seeds. */
  acrossSeeds?: boolean;
}

/** What the Compare picker returned: files to compare, or one example family (maybe across its seeds). */
type ComparePick = { files: vscode.Uri[] } | { example: ExampleFamily; acrossSeeds: boolean };

/** Multi-select of saved reports and workspace model files, the shipped example families, and "Browse…". */
async function pickForCompare(ctx: Ctx): Promise<ComparePick | undefined> {
  const folderSetting = (scope: vscode.Uri | undefined) => String(vscode.workspace.getConfiguration('infodiscard', scope).get('reportsFolder') ?? '.infodiscard');
  const [reports, models, examples] = await Promise.all([
    ctx.store.list(allReportsFolders(folderSetting, ctx.extension.globalStorageUri)),
    vscode.workspace.findFiles('**/{model.json,*.h5,*.hdf5,*.keras,*.onnx,*.pt,*.pth,*.pt2}', '**/node_modules/**', 200),
    exampleFamilies(ctx),
  ]);
  const items: CompareItem[] = [];
  if (models.length) items.push({ label: 'Models', kind: vscode.QuickPickItemKind.Separator });
  for (const m of models) items.push({ label: modelName(m.fsPath), description: vscode.workspace.asRelativePath(m), uri: m });
  if (reports.length) items.push({ label: 'Saved reports', kind: vscode.QuickPickItemKind.Separator });
  for (const r of reports) {
    items.push({ label: modelName(r.modelPath), description: `${r.createdAt.slice(0, 16).replace('T', ' ')} · ${r.status} · ${r.layers.length} layers`, detail: vscode.workspace.asRelativePath(r.path), uri: vscode.Uri.file(r.path) });
  }
  if (examples.length) items.push({ label: 'Example model families (shipped with infodiscard)', kind: vscode.QuickPickItemKind.Separator });
  for (const f of examples) {
    items.push({ ...exampleItem(f), example: f });
    if (f.seeds.length > 1) items.push({ ...exampleItem(f, true), example: f, acrossSeeds: true });
  }
  items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(folder-opened) Browse…', description: 'other models or reports', browse: true, alwaysShow: true });
  const picked = await vscode.window.showQuickPick(items, {
    canPickMany: true,
    title: 'infodiscard: compare layers across models',
    placeHolder: examples.length ? 'Pick two or more models or saved reports, or one example family' : 'Pick two or more models or saved reports',
    ignoreFocusOut: true,
  });
  if (!picked) return undefined;
  const chosenExamples = picked.filter((p) => p.example);
  if (chosenExamples.length) {
    if (picked.length > 1) {
      void vscode.window.showWarningMessage('infodiscard: an example family is compared on its own; pick one family, or models and reports without a family.');
      return undefined;
    }
    return { example: chosenExamples[0].example!, acrossSeeds: !!chosenExamples[0].acrossSeeds };
  }
  const out = picked.filter((p) => p.uri).map((p) => p.uri!);
  if (picked.some((p) => p.browse)) {
    const more = await vscode.window.showOpenDialog({ canSelectMany: true, openLabel: 'Compare', filters: { 'Models and reports': [...MODEL_EXTENSIONS, ...PYTORCH_EXTENSIONS] } });
    if (!more) return undefined;
    out.push(...more);
  }
  return { files: out };
}

/** A picked file: a saved report (used as is) or a model (analysed unless a current report exists). */
async function classify(uri: vscode.Uri): Promise<{ uri: vscode.Uri; report?: Report }> {
  // Keras and ONNX files are models; only JSON can be a saved report.
  if (!uri.fsPath.toLowerCase().endsWith('.json')) return { uri };
  let text: string;
  try {
    text = await readFile(uri.fsPath, 'utf8');
  } catch {
    throw new UserError('cannot be read', uri.fsPath);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UserError('is not JSON: pick model files (model.json, .h5, .keras, .onnx) or infodiscard reports', uri.fsPath);
  }
  if ((json as { tool?: { name?: unknown } } | null)?.tool?.name === 'infodiscard') return { uri, report: parseReport(text, uri.fsPath) };
  return { uri };
}

/** Runs `tasks` with at most `limit` at once. */
async function limited<T>(limit: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, tasks.length)) }, lane));
  return results;
}

export async function compareModels(ctx: Ctx, uri?: vscode.Uri, uris?: vscode.Uri[]): Promise<void> {
  try {
    const given = Array.isArray(uris) && uris.length >= 2 ? { files: uris } : undefined;
    const pick = given ?? (await pickForCompare(ctx));
    if (!pick) return;
    if ('example' in pick) return await compareFamily(ctx, pick.example, pick.acrossSeeds);
    const unique = [...new Map(pick.files.map((f) => [f.fsPath, f])).values()];
    if (unique.length < 2) {
      void vscode.window.showWarningMessage('infodiscard: pick two or more models or saved reports to compare.');
      return;
    }
    const classified = await Promise.all(unique.map(classify));
    const allLabels = distinctLabels(classified.map((p) => (p.report ? String(p.report.model.path) : p.uri.fsPath)));
    // PyTorch files are exported to ONNX first; one the user declines (or that holds weights only) is left out.
    const picked: { uri: vscode.Uri; report?: Report }[] = [];
    const labels: string[] = [];
    for (const [i, p] of classified.entries()) {
      const uri = p.report ? p.uri : await modelToAnalyse(ctx, p.uri);
      if (!uri) continue;
      picked.push({ ...p, uri });
      labels.push(allLabels[i]);
    }
    if (picked.length < 2) return;
    let choice: RunChoice | undefined;
    if (picked.some((p) => !p.report)) {
      const scope = picked.find((p) => !p.report)?.uri;
      const settings = settingsOrShow(ctx, scope);
      if (!settings) return;
      const images = await chooseImages(ctx, settings.images, scope);
      if (!images) return;
      choice = await runChoice(ctx, settings, images, scope);
    }
    await showComparison(ctx, picked, labels, choice);
  } catch (e) {
    showError(ctx, e);
  }
}

/** "Compare an Example Model Family…": one shipped family, picked from a list (or given, from the Compare picker). */
export async function compareExample(ctx: Ctx): Promise<void> {
  try {
    const families = await exampleFamilies(ctx);
    if (families.length === 0) {
      void vscode.window.showWarningMessage(`infodiscard: no example families found in ${familiesFolder(ctx)}; reinstall the extension to get them.`);
      return;
    }
    const picked = await vscode.window.showQuickPick(families.flatMap((f) => [
      { ...exampleItem(f), family: f, acrossSeeds: false },
      ...(f.seeds.length > 1 ? [{ ...exampleItem(f, true), family: f, acrossSeeds: true }] : []),
    ]), {
      title: 'infodiscard: compare an example model family',
      placeHolder: 'Small Fashion-MNIST networks trained for the paper\'s comparisons',
      matchOnDescription: true,
      matchOnDetail: true,
    });
    if (picked) await compareFamily(ctx, picked.family, picked.acrossSeeds);
  } catch (e) {
    showError(ctx, e);
  }
}

/**
 * Analyses (or reuses the reports of) every model of a family on its images and layers, charted in one panel.
 * `acrossSeeds`: every trained seed of each model, each model's runs one group (drawn as mean ± SD across runs).
 */
async function compareFamily(ctx: Ctx, family: ExampleFamily, acrossSeeds = false): Promise<void> {
  const settings = settingsOrShow(ctx, undefined);
  if (!settings) return;
  const choice = await exampleChoice(settings, family);
  if (acrossSeeds && family.seeds.length > 1) {
    const runs = exampleRuns(family, family.seeds);
    const picked = runs.map((r) => ({ uri: vscode.Uri.file(r.file), group: r.group, seed: r.seed }));
    const labels = runs.map((r) => `${r.spec.name} (seed ${r.seed})`);
    ctx.log.info(`Example family "${family.spec.title}" across seeds ${family.seeds.join(', ')}: ${runs.length} models at ${family.spec.layers.join(', ')} on ${choice.images.files.length} images`);
    await showComparison(ctx, picked, labels, choice);
    return;
  }
  const picked = family.inputs.models.map((m) => ({ uri: vscode.Uri.file(m.file) }));
  const names = family.inputs.models.map((m) => m.spec.name);
  const labels = new Set(names).size === names.length ? names : distinctLabels(family.inputs.models.map((m) => m.file));
  ctx.log.info(`Example family "${family.spec.title}": ${names.join(', ')} at ${family.spec.layers.join(', ')} on ${choice.images.files.length} images`);
  await showComparison(ctx, picked, labels, choice);
}

/**
 * Opens the comparison panel on `picked` (saved reports shown as they are; models analysed with `choice`, or
 * their current reports reused), then fills it in as analyses finish, a worker's worth at a time.
 */
async function showComparison(ctx: Ctx, picked: { uri: vscode.Uri; report?: Report; group?: string; seed?: number }[], labels: string[], choice: RunChoice | undefined): Promise<void> {
  // Report paths first (hashing the models), so the panel can open before any analysis runs.
  const sources: ReportSource[] = [];
  const known = new Map<string, Report>();
  const jobs: (() => Promise<Resolved>)[] = [];
  for (const [i, p] of picked.entries()) {
    const runOf = { ...(p.group !== undefined ? { group: p.group } : {}), ...(p.seed !== undefined ? { seed: p.seed } : {}) };
    if (p.report) {
      sources.push({ path: p.uri.fsPath, label: labels[i], ...runOf });
      known.set(p.uri.fsPath, p.report);
      continue;
    }
    const c = choice!;
    const plan = await planReport(ctx, p.uri, c);
    sources.push({ path: plan.reusable?.path ?? plan.reportPath, label: labels[i], ...runOf });
    jobs.push(() => ensureReport(ctx, p.uri, labels[i], c, undefined, plan));
  }
  const panel = ReportPanel.createOrShow(ctx, sources, panelHooks(ctx), known);
  const results = await limited(choice?.settings.workers ?? 1, jobs);
  for (const r of results) if (r.report) panel.update(r.reportPath, r.report);
}
