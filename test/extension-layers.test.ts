/**
 * Analyze Model's layer picker, resume and terminal states with the mocked VS Code and a fake worker pool: the picker
 * lists the layers grouped by block with shapes, the recommended ones checked, shortcuts first, the choice remembered
 * per model; a re-run over other layers resumes into the same report file; a failed run (worker gone, report left
 * 'running') reaches the report file, the panel, the progress notification and the status bar; a skipped layer ends
 * the run complete with a warning.
 */
import { makeExtensionContext, mock, Uri } from './helpers/vscode-mock';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { activate } from '../src/extension/main';
import type { AnalysisEvent } from '../src/engine/events';
import type { Report } from '../src/engine/report';
import { writeReport } from '../src/engine/reportFile';
import type { AnalyzeParams, ModelLayers, ToWebview } from '../src/protocol';
import type { Ctx } from '../src/extension/ctx';
import { lastChoiceKey, type LayerPickItem } from '../src/extension/layerPicker';
import { ReportPanel } from '../src/extension/panel';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';
import { sampleReport } from './fixtures/sample-report';

const ROOT = path.resolve(__dirname, '..');
const ws = tempDir('infodiscard-ext-layers-');
let ctx: Ctx;
let model: string;
let sha: string;

const run = (id: string, ...args: unknown[]) => mock.commands.get(id)!(...args) as Promise<void>;

/** The model as the worker lists it: conv1 -> relu1 -> conv2 -> pool -> dense, two blocks. */
const LISTED = (modelPath: string): ModelLayers => ({
  modelPath,
  format: 'tfjs-layers',
  input: { height: 8, width: 8, channels: 1 },
  layers: [
    { name: 'conv1', kind: 'Conv2D', outputShape: [8, 8, 4], conv: true, recommended: false, block: 'relu1' },
    { name: 'relu1', kind: 'ReLU', outputShape: [8, 8, 4], conv: false, recommended: true, why: 'end of the 8x8 stage', block: 'relu1' },
    { name: 'conv2', kind: 'Conv2D', outputShape: [4, 4, 2], conv: true, recommended: false, block: 'dense' },
    { name: 'pool', kind: 'GlobalAveragePooling2D', outputShape: [2], conv: false, recommended: false, block: 'dense' },
    { name: 'dense', kind: 'Dense', outputShape: [3], conv: false, recommended: true, why: 'output', block: 'dense' },
  ],
});

type Behaviour = (params: AnalyzeParams, emit: (e: AnalysisEvent) => void) => Promise<{ status: 'complete' | 'cancelled'; reportPath: string }>;

/** A pool that lists LISTED and runs analyses as `behave` says, recording what it was asked. */
function fakePool(behave: Behaviour) {
  const calls: AnalyzeParams[] = [];
  const pool = {
    pids: [] as number[],
    async dispose() {},
    async listLayers(params: { modelPath: string }) {
      return { status: 'complete' as const, model: LISTED(params.modelPath) };
    },
    async run(params: AnalyzeParams, handlers: { onEvent?: (e: AnalysisEvent) => void }) {
      calls.push(params);
      return behave(params, (e) => handlers.onEvent?.(e));
    },
  };
  return { pool, calls };
}

/** A report of `layers` (all finished unless `finished` says how many), from the synthetic sample's layers. */
function reportOf(params: AnalyzeParams, layers: string[], status: Report['status'], finished = layers.length): Report {
  const base = sampleReport();
  const r: Report = { ...base, status, model: { ...base.model, path: params.modelPath, sha256: sha }, settings: { ...params.settings, backend: 'wasm' } };
  r.requestedLayers = layers;
  r.layers = layers.slice(0, finished).map((name, i) => ({ ...base.layers[i % base.layers.length], name }));
  return r;
}

function withPool(p: ReturnType<typeof fakePool>['pool']): () => void {
  const real = ctx.pool;
  ctx.pool = (() => p) as unknown as typeof ctx.pool;
  return () => {
    ctx.pool = real;
  };
}

function configure(extra: Record<string, unknown> = {}): void {
  mock.config.clear();
  for (const [k, v] of Object.entries({ images: 'images', backend: 'wasm', maxSteps: 20, samplesPerStep: 4, workers: 1, ...extra })) mock.config.set(`infodiscard.${k}`, v);
}

before(async () => {
  mock.reset();
  mock.workspaceFolders.push({ uri: Uri.file(ws), name: 'ws', index: 0 });
  model = await saveLayersModel(reluConvNet(8, 1), path.join(ws, 'models', 'net'));
  mkdirSync(path.join(ws, 'images'));
  writeGrayPng(path.join(ws, 'images', 'x0.png'), 8, 8, (x, y) => ((x + 2 * y) % 21) / 21);
  ctx = activate(makeExtensionContext(ROOT, path.join(ws, 'storage')) as never);
  sha = (await ctx.store.modelHash(model))!;
});

after(async () => {
  ReportPanel.all().forEach((p) => p.dispose());
  await ctx?.dispose();
  rmSync(ws, { recursive: true, force: true });
});

test('the layer picker: shortcuts first, blocks with separators, shapes, recommended checked; the choice is remembered per model', async () => {
  const { pool, calls } = fakePool(async (params, emit) => {
    const r = reportOf(params, params.layers!, 'complete');
    emit({ type: 'started', layers: params.layers!, images: 1, backend: 'wasm' });
    writeReport(params.reportPath, r);
    return { status: 'complete', reportPath: params.reportPath };
  });
  const restore = withPool(pool);
  try {
    configure();
    const seen: LayerPickItem[][] = [];
    const options: unknown[] = [];
    // First run: keep what is checked (the recommended set) and add conv2.
    mock.answer.quickPick = (items, opts) => {
      const list = items as LayerPickItem[];
      seen.push(list);
      options.push(opts);
      return list.filter((i) => (i.picked && i.layer) || i.layer === 'conv2');
    };
    await run('infodiscard.analyzeModel', Uri.file(model));
    const items = seen[0];
    assert.equal((options[0] as { canPickMany?: boolean }).canPickMany, true);
    assert.deepEqual(items.slice(0, 2).map((i) => i.shortcut), ['recommended', 'all'], 'no last choice yet');
    assert.match(items[0].label, /Recommended layers \(2 of 5\)/);
    const separators = items.filter((i) => !i.layer && !i.shortcut);
    assert.deepEqual(separators.map((i) => i.label), ['block ending at relu1', 'block ending at dense']);
    const layerItems = items.filter((i) => i.layer);
    assert.deepEqual(layerItems.map((i) => [i.layer, i.picked]), [['conv1', false], ['relu1', true], ['conv2', false], ['pool', false], ['dense', true]]);
    assert.equal(layerItems[2].description, 'Conv2D [4, 4, 2]');
    assert.equal(layerItems[1].detail, 'recommended: end of the 8x8 stage');
    assert.deepEqual(calls[0].layers, ['relu1', 'conv2', 'dense'], 'the checked layers, in model order');
    assert.deepEqual(ctx.extension.workspaceState.get(lastChoiceKey(model)), ['relu1', 'conv2', 'dense']);

    // Second run: the last choice is offered and checked; the "All layers" shortcut wins over the checks.
    mock.answer.quickPick = (items) => {
      const list = items as LayerPickItem[];
      seen.push(list);
      return [list.find((i) => i.shortcut === 'all')!, ...list.filter((i) => i.picked)];
    };
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.deepEqual(seen[1].slice(0, 3).map((i) => i.shortcut), ['recommended', 'all', 'last']);
    assert.deepEqual(seen[1].filter((i) => i.picked).map((i) => i.layer), ['relu1', 'conv2', 'dense']);
    assert.deepEqual([...calls[1].layers!].sort(), ['conv1', 'conv2', 'dense', 'pool', 'relu1'], 'every layer (the engine keeps model order)');
    assert.equal(calls[1].reportPath, calls[0].reportPath, 'the same report file: it resumes (the engine reuses the layers it has)');

    // Dismissed: nothing runs. Setting "recommended": no question.
    mock.answer.quickPick = () => undefined;
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.equal(calls.length, 2);
    configure({ layers: 'recommended', maxSteps: 21 });
    const asked = seen.length;
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.equal(seen.length, asked, 'not asked');
    assert.deepEqual(calls[2].layers, ['relu1', 'dense']);
  } finally {
    mock.answer.quickPick = undefined;
    restore();
  }
});

test('resume: a complete report over fewer layers is extended in place; one that has every chosen layer is reused', async () => {
  const { pool, calls } = fakePool(async (params) => {
    writeReport(params.reportPath, reportOf(params, params.layers!, 'complete'));
    return { status: 'complete', reportPath: params.reportPath };
  });
  const restore = withPool(pool);
  try {
    configure({ maxSteps: 22 });
    const pick = (names: string[]) => (mock.answer.quickPick = (items) => (items as LayerPickItem[]).filter((i) => i.layer && names.includes(i.layer)));
    pick(['relu1']);
    await run('infodiscard.analyzeModel', Uri.file(model));
    pick(['dense']);
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.deepEqual(calls.map((c) => c.layers), [['relu1'], ['relu1', 'dense']], 'the earlier layer stays in the request (reused by the engine)');
    assert.equal(calls[1].reportPath, calls[0].reportPath);
    pick(['relu1', 'dense']);
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.equal(calls.length, 2, 'both layers are in the report: reused, no run');
  } finally {
    mock.answer.quickPick = undefined;
    restore();
  }
});

test('a failed run reaches the report, the panel, the progress notification and the status bar', async () => {
  const { pool } = fakePool(async (params, emit) => {
    const layers = params.layers!;
    emit({ type: 'started', layers, images: 1, backend: 'wasm' });
    const r = reportOf(params, layers, 'running', 1);
    writeReport(params.reportPath, r);
    emit({ type: 'layerDone', layer: layers[0], index: 0, total: layers.length, result: r.layers[0] });
    emit({ type: 'layerStarted', layer: layers[1], index: 1, total: layers.length });
    // The worker process dies: its report still says 'running'.
    throw Object.assign(new Error('the analysis process stopped unexpectedly (signal SIGKILL; out of memory?)'), { code: 'internal', reportPath: params.reportPath });
  });
  const restore = withPool(pool);
  try {
    configure({ layers: 'recommended', maxSteps: 23 });
    mock.messages.length = 0;
    await run('infodiscard.analyzeModel', Uri.file(model));
    await new Promise((r) => setTimeout(r, 50));
    const panel = mock.panels[mock.panels.length - 1];
    panel.receive({ type: 'ready' });
    await new Promise((r) => setTimeout(r, 50));
    const reports = (panel.webview.posted as ToWebview[]).filter((m): m is Extract<ToWebview, { type: 'report' }> => m.type === 'report');
    assert.equal(reports[reports.length - 1].report.status, 'failed', 'the panel shows FAILED, not RUNNING');
    const source = reports[reports.length - 1].source!;
    const onDisk = JSON.parse(readFileSync(source, 'utf8')) as Report;
    assert.equal(onDisk.status, 'failed');
    assert.match(onDisk.error ?? '', /stopped unexpectedly/);
    const progress = mock.progress[mock.progress.length - 1];
    assert.match(progress.reports[progress.reports.length - 1].message ?? '', /^failed: the analysis process stopped unexpectedly/);
    assert.match(ctx.runs.statusText ?? '', /^\$\(error\) SID net: failed/);
    assert.equal(mock.messages.filter((m) => m.level === 'error').length, 1);
  } finally {
    restore();
  }
});

test('a skipped layer: the run ends complete, with a warning, and the status bar and notification say so', async () => {
  const { pool } = fakePool(async (params, emit) => {
    const layers = params.layers!;
    emit({ type: 'started', layers, images: 1, backend: 'wasm' });
    const r = reportOf(params, layers, 'complete', 1);
    r.skippedLayers = [{ name: layers[1], reason: 'its output does not change when the input changes (delta_f^2 = 0), so SID is undefined' }];
    emit({ type: 'layerDone', layer: layers[0], index: 0, total: 2, result: r.layers[0] });
    emit({ type: 'layerSkipped', layer: layers[1], index: 1, total: 2, reason: r.skippedLayers[0].reason });
    emit({ type: 'warning', layer: layers[1], message: `skipped: ${r.skippedLayers[0].reason}` });
    writeReport(params.reportPath, r);
    emit({ type: 'done', report: r });
    return { status: 'complete', reportPath: params.reportPath };
  });
  const restore = withPool(pool);
  try {
    configure({ layers: 'recommended', maxSteps: 24 });
    mock.messages.length = 0;
    mock.log.length = 0;
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
    const warnings = mock.messages.filter((m) => m.level === 'warning');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0].message, /layer "dense": skipped: its output does not change/);
    assert.match(mock.log.join('\n'), /\[2\/2\] dense skipped: its output does not change/);
    const progress = mock.progress[mock.progress.length - 1];
    assert.equal(progress.reports.filter((r) => r.increment).length, 2, 'the skipped layer advances the bar too');
    assert.match(progress.reports[progress.reports.length - 1].message ?? '', /^complete in .* · 1 skipped$/);
    assert.match(ctx.runs.statusText ?? '', /^\$\(check\) SID net: complete · 1 layers, 1 skipped/);
  } finally {
    restore();
  }
});
