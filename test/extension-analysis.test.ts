/**
 * The commands end to end with the real worker (dist/worker.js, forked) and the mocked VS Code: Analyze Model…
 * writes the keyed report, drives progress, status and log, and fills the panel layer by layer; a second run with
 * unchanged model and settings reuses the report; a changed model is analysed afresh and its old report is stale;
 * Compare analyses only what has no current report; Cancel keeps the finished layers; errors are one line.
 */
import { makeExtensionContext, mock, Uri } from './helpers/vscode-mock';
import { after, before, test } from 'node:test';
import { activate } from '../src/extension/main';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import type { LayerResult, Report } from '../src/engine/report';
import type { AnalysisEvent } from '../src/engine/events';
import { writeReport } from '../src/engine/reportFile';
import { LIGHT_DECODER } from '../src/engine/settings';
import type { AnalyzeParams, ToWebview } from '../src/protocol';
import { layerLogLine } from '../src/extension/analysis';
import type { Ctx } from '../src/extension/ctx';
import { ReportPanel } from '../src/extension/panel';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';
import { sampleReport } from './fixtures/sample-report';

const ROOT = path.resolve(__dirname, '..');
const ws = tempDir('infodiscard-ext-e2e-');
const reports = path.join(ws, '.infodiscard');
let modelA: string;
let modelB: string;
let ctx: Ctx;

const run = (id: string, ...args: unknown[]) => mock.commands.get(id)!(...args) as Promise<void>;
const reportFiles = () => (existsSync(reports) ? readdirSync(reports).filter((f) => f.endsWith('.json')).sort() : []);
const readJson = (f: string) => JSON.parse(readFileSync(path.join(reports, f), 'utf8')) as Report;

before(async () => {
  mock.reset();
  mock.workspaceFolders.push({ uri: Uri.file(ws), name: 'ws', index: 0 });
  modelA = await saveLayersModel(reluConvNet(8, 1), path.join(ws, 'models', 'net-a'));
  modelB = await saveLayersModel(reluConvNet(8, 2), path.join(ws, 'models', 'net-b'));
  mkdirSync(path.join(ws, 'images'));
  [0, 1].forEach((i) => writeGrayPng(path.join(ws, 'images', `x${i}.png`), 8, 8, (x, y) => ((x + 2 * y + 5 * i) % 21) / 21));
  ctx = activate(makeExtensionContext(ROOT, path.join(ws, 'storage')) as never);
});

after(async () => {
  ReportPanel.all().forEach((p) => p.dispose());
  await ctx?.dispose();
  rmSync(ws, { recursive: true, force: true });
});

/** One worker unless a test says otherwise: these tests follow one process's runs (the workers test covers several). */
function configure(extra: Record<string, unknown> = {}): void {
  mock.config.clear();
  // Every layer, without the layer picker (test/extension-layers.test.ts covers it).
  for (const [k, v] of Object.entries({ images: 'images', backend: 'wasm', maxSteps: 20, samplesPerStep: 4, workers: 1, layers: 'all', ...extra })) mock.config.set(`infodiscard.${k}`, v);
}

/** Simulates the webview's 'ready' on every panel and returns what each received. */
async function webviewMessages(): Promise<ToWebview[][]> {
  for (const p of mock.panels) p.receive({ type: 'ready' });
  await new Promise((r) => setTimeout(r, 20));
  return mock.panels.map((p) => p.webview.posted as ToWebview[]);
}

test('Analyze Model… on a model.json: keyed report, progress, status bar, log, live panel', { timeout: 120_000 }, async () => {
  configure();
  const running: unknown[] = [];
  const origExec = mock.contextKeys.set.bind(mock.contextKeys);
  mock.contextKeys.set = (k: string, v: unknown) => {
    if (k === 'infodiscard.running') running.push(v);
    return origExec(k, v);
  };
  await run('infodiscard.analyzeModel', Uri.file(modelA));
  mock.contextKeys.set = origExec;

  assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
  const files = reportFiles();
  assert.equal(files.length, 1);
  assert.match(files[0], /^net-a-[0-9a-f]{12}-[0-9a-f]{10}\.json$/);
  const report = readJson(files[0]);
  assert.equal(report.status, 'complete');
  assert.deepEqual(report.layers.map((l) => l.name), ['conv1', 'conv2', 'conv3']);
  assert.equal(report.model.path, modelA);
  assert.equal(report.images.length, 2);
  assert.ok(files[0].includes(report.model.sha256.slice(0, 12)), 'file name carries the model hash');

  // Progress: a cancellable notification, three per-layer increments adding to 100, step messages.
  const progress = mock.progress[0];
  assert.equal(progress.options.cancellable, true);
  assert.equal(progress.options.title, 'SID of net-a');
  const increments = progress.reports.filter((r) => r.increment).map((r) => r.increment!);
  assert.equal(increments.length, 3);
  assert.ok(Math.abs(increments.reduce((a, b) => a + b, 0) - 100) < 1e-9);
  assert.ok(progress.reports.some((r) => /conv1 \(1\/3\)/.test(r.message ?? '')));
  assert.deepEqual([running[0], running[running.length - 1]], [true, false], 'infodiscard.running set while it ran');

  // Log: backend, per-layer constraint ratios and lambda, timings.
  const log = mock.log.join('\n');
  assert.match(log, /net-a: backend wasm, 3 layers, 2 images/);
  assert.match(log, /\[2\/3\] conv2 \(Conv2D\): SID -?\d+\.\d+ ± \d+\.\d+ nats\/pixel; constraint ratio [\d.]+, [\d.]+ \(alpha 1\.5\); lambda \S+, \S+; steps \d+, \d+/);
  assert.match(log, /net-a: complete in [\d.]+ s/);

  // Panel: opened beside, titled, and after ready shows the finished report.
  assert.equal(mock.panels.length, 1);
  assert.equal(mock.panels[0].title, 'SID: net-a');
  const [posted] = await webviewMessages();
  const last = posted.filter((m) => m.type === 'report').pop() as Extract<ToWebview, { type: 'report' }>;
  assert.equal(last.report.status, 'complete');
  assert.equal(last.report.layers.length, 3);
});

test('unchanged model and settings: the saved report is reused without a worker run', async () => {
  configure();
  const before = mock.progress.length;
  await run('infodiscard.analyzeModel', Uri.file(modelA));
  assert.equal(mock.progress.length, before, 'no analysis ran');
  assert.match(mock.log.join('\n'), /net-a: model and settings unchanged, reusing/);
  assert.equal(reportFiles().length, 1);
  assert.equal(mock.panels.filter((p) => !p.disposed).length, 1, 'the same panel was revealed');
});

test('changed settings give a new report; a changed model makes the old reports stale', { timeout: 120_000 }, async () => {
  configure({ maxSteps: 10 });
  await run('infodiscard.analyzeModel', Uri.file(modelA));
  assert.equal(reportFiles().length, 2, 'new settings, new report file');
  // Change the model's weights: its reports no longer match.
  const weights = path.join(path.dirname(modelA), 'weights.bin');
  const bytes = readFileSync(weights);
  bytes[8] ^= 0x40;
  writeFileSync(weights, bytes);
  const fresh = await Promise.all(reportFiles().map((f) => ctx.store.freshness({ modelPath: modelA, modelSha: readJson(f).model.sha256 })));
  assert.deepEqual(fresh, ['stale', 'stale']);
  // Open Report… lists them, marked stale.
  let items: { label: string; description?: string }[] = [];
  mock.answer.quickPick = (list) => {
    items = list as typeof items;
    return undefined;
  };
  await run('infodiscard.openReport');
  const saved = items.filter((i) => i.label === 'net-a');
  assert.equal(saved.length, 2);
  for (const i of saved) assert.match(i.description ?? '', /complete · 3 layers · \$\(warning\) stale: the model changed/);
  assert.ok(items.some((i) => /Browse/.test(i.label)));
});

test('Compare: analyses only the model without a current report; one series per model, labelled by name', { timeout: 120_000 }, async () => {
  configure({ maxSteps: 10 });
  const savedA = reportFiles().find((f) => readJson(f).settings.maxSteps === 10)!;
  const before = mock.progress.length;
  // net-a is given as its saved report, net-b as a model.
  await run('infodiscard.compareModels', Uri.file(modelB), [Uri.file(path.join(reports, savedA)), Uri.file(modelB)]);
  assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
  assert.equal(mock.progress.length, before + 1, 'one analysis (net-b)');
  assert.equal(mock.progress[mock.progress.length - 1].options.title, 'SID of net-b');
  const panel = mock.panels[mock.panels.length - 1];
  assert.equal(panel.title, 'Compare: net-a vs net-b (stale)', 'net-a changed since its report');
  panel.receive({ type: 'ready' });
  await new Promise((r) => setTimeout(r, 20));
  const compare = (panel.webview.posted as ToWebview[]).filter((m) => m.type === 'compare').pop() as Extract<ToWebview, { type: 'compare' }>;
  assert.deepEqual(compare.series.map((s) => s.label), ['net-a', 'net-b']);
  assert.deepEqual(compare.series.map((s) => s.report.status), ['complete', 'complete']);
  assert.equal(mock.log.filter((l) => /net-b: complete/.test(l)).length, 1);
});

test('Cancel Analysis keeps the finished layers; the report says cancelled', { timeout: 120_000 }, async () => {
  configure({ maxSteps: 400, samplesPerStep: 16, tau: 0.011 });
  // A larger input, so that a layer takes long enough to be cancelled in the middle.
  const big = await saveLayersModel(reluConvNet(32, 4), path.join(ws, 'models', 'net-big'));
  const analysis = run('infodiscard.analyzeModel', Uri.file(big));
  // Once the second layer starts, cancel from the command (as the status-bar item does).
  const t0 = Date.now();
  const started = () => mock.progress.some((p) => p.options.title === 'SID of net-big' && p.reports.some((r) => /conv2 \(2\/3\)/.test(r.message ?? '')));
  while (!started() && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 5));
  await run('infodiscard.cancelAnalysis');
  await analysis;
  const file = reportFiles().find((f) => readJson(f).settings.tau === 0.011)!;
  const report = readJson(file);
  assert.equal(report.status, 'cancelled');
  assert.ok(report.layers.length >= 1 && report.layers.length < 3, `${report.layers.length} layers kept`);
  assert.match(mock.log.join('\n'), /net-big: cancelled after [\d.]+ s; \d of 3 layers kept/);
  assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), [], 'a cancel is not an error');
  assert.match(ctx.runs.statusText ?? '', /^\$\(circle-slash\) SID net-big: cancelled/, 'the status bar says how it ended');

  // Analyze again: it resumes in the same report, the kept layers reused, only the rest computed.
  const kept = report.layers.map((l) => l.name);
  await run('infodiscard.analyzeModel', Uri.file(big));
  const resumed = readJson(file);
  assert.equal(resumed.status, 'complete');
  assert.deepEqual(resumed.layers.map((l) => l.name), ['conv1', 'conv2', 'conv3']);
  assert.deepEqual(resumed.layers.filter((l) => l.reused).map((l) => l.name), kept);
  for (const name of kept) assert.deepEqual(resumed.layers.find((l) => l.name === name)!.perImage, report.layers.find((l) => l.name === name)!.perImage, `${name}: as it was`);
  assert.match(mock.log.join('\n'), new RegExp(`net-big: resuming: ${kept.join(', ')} taken over from the earlier report`));
});

test('no images setting: a quick pick with the sample images first; Browse… choices become recent ones', { timeout: 120_000 }, async () => {
  configure({ images: '' });
  let items: { label: string; description?: string }[] = [];
  mock.answer.quickPick = (list) => {
    // The model's preprocessing prompt (first analysis): dismissed, the suggestion is used.
    if ((list as { label: string }[]).some((i) => i.label === 'Custom…')) return undefined;
    items = list as typeof items;
    return items.find((i) => /Browse/.test(i.label));
  };
  mock.answer.openDialog = () => [Uri.file(path.join(ws, 'images'))];
  await run('infodiscard.analyzeModel', Uri.file(modelB));
  assert.deepEqual(items.map((i) => i.label), ['$(file-media) Sample images', '$(folder-opened) Browse…'], 'first run: samples (default) and browse');
  assert.match(mock.log.join('\n'), /images: images \(2 files\)/);
  // Second run: the browsed folder is offered first; picking the samples analyses the shipped images.
  const before = mock.progress.length;
  mock.answer.quickPick = (list) => {
    // The model's preprocessing prompt (first analysis): dismissed, the suggestion is used.
    if ((list as { label: string }[]).some((i) => i.label === 'Custom…')) return undefined;
    items = list as typeof items;
    return items.find((i) => /Sample/.test(i.label));
  };
  await run('infodiscard.analyzeModel', Uri.file(modelB));
  assert.deepEqual(items.map((i) => i.label), ['$(history) images', '$(file-media) Sample images', '$(folder-opened) Browse…']);
  assert.equal(mock.progress.length, before + 1);
  const sampleRun = reportFiles().map(readJson).find((r) => r.images.length === 6);
  assert.ok(sampleRun, 'a report over the 6 sample images');
  assert.ok(sampleRun.images.every((i) => i.path.startsWith(path.join(ROOT, 'media', 'sample', 'images'))));
  // Dismissing the pick cancels quietly.
  mock.answer.quickPick = undefined;
  mock.messages.length = 0;
  await run('infodiscard.analyzeModel', Uri.file(modelB));
  assert.deepEqual(mock.messages, []);
  mock.answer.openDialog = undefined;
});

/** Resolves once the analysis of `label` (still running) reports its second layer. */
async function secondLayerStarted(label: string): Promise<void> {
  const t0 = Date.now();
  const started = () =>
    mock.progress.some((p) => p.options.title === `SID of ${label}` && !p.done && p.reports.some((r) => /conv2 \(2\/3\)/.test(r.message ?? '')));
  while (!started() && Date.now() - t0 < 60_000) await new Promise((r) => setTimeout(r, 5));
}

test('a crashed worker: one error naming the model, the partial report kept and offered', { timeout: 120_000 }, async () => {
  configure({ maxSteps: 400, samplesPerStep: 16, tau: 0.012 });
  const big = path.join(ws, 'models', 'net-big', 'model.json');
  mock.messages.length = 0;
  mock.answer.message = (_m, buttons) => (buttons.includes('Open Partial Report') ? 'Open Partial Report' : undefined);
  const panelsBefore = mock.panels.length;
  const analysis = run('infodiscard.analyzeModel', Uri.file(big));
  await secondLayerStarted('net-big');
  const pids = ctx.pool(1).pids;
  assert.equal(pids.length, 1);
  process.kill(pids[0], 'SIGKILL');
  await analysis;
  await new Promise((r) => setTimeout(r, 100));
  const errors = mock.messages.filter((m) => m.level === 'error');
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /^infodiscard: analysis of net-big failed: the analysis process stopped unexpectedly \(signal SIGKILL; out of memory\?\)\. The partial report was kept\.$/);
  assert.deepEqual(errors[0].items, ['Open Partial Report', 'Show Log']);
  const report = reportFiles().map(readJson).find((r) => r.settings.tau === 0.012)!;
  assert.ok(report.layers.length >= 1, 'finished layers kept');
  assert.ok(mock.panels.length >= panelsBefore, 'the partial report is shown');
  const panel = mock.panels[mock.panels.length - 1];
  assert.match(panel.title, /^SID: net-big/);
  mock.answer.message = undefined;
});

test('closing the panel cancels its analysis and leaves no worker process', { timeout: 120_000 }, async () => {
  configure({ maxSteps: 400, samplesPerStep: 16, tau: 0.013 });
  ReportPanel.all().forEach((p) => p.dispose());
  const big = path.join(ws, 'models', 'net-big', 'model.json');
  const analysis = run('infodiscard.analyzeModel', Uri.file(big));
  await secondLayerStarted('net-big');
  const pids = ctx.pool(1).pids;
  assert.equal(pids.length, 1);
  const panels = ReportPanel.all();
  assert.equal(panels.length, 1);
  panels[0].panel.dispose(); // as the user closing the tab
  await analysis;
  const gone = (pid: number) => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  const t1 = Date.now();
  while (!gone(pids[0]) && Date.now() - t1 < 5_000) await new Promise((r) => setTimeout(r, 20));
  assert.ok(gone(pids[0]), `worker ${pids[0]} still running`);
  const report = reportFiles().map(readJson).find((r) => r.settings.tau === 0.013)!;
  assert.equal(report.status, 'cancelled');
  assert.ok(report.layers.length >= 1, 'finished layers kept');
});

test('workers: 2 runs the layers of one analysis in two processes; the report equals a one-worker run', { timeout: 120_000 }, async () => {
  configure({ tau: 0.015, workers: 2 });
  mock.messages.length = 0;
  const before = new Set(reportFiles());
  await run('infodiscard.analyzeModel', Uri.file(modelA));
  assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
  const file = reportFiles().find((f) => !before.has(f))!;
  const two = readJson(file);
  assert.equal(two.status, 'complete');
  assert.deepEqual(two.layers.map((l) => l.name), ['conv1', 'conv2', 'conv3']);
  assert.match(mock.log.join('\n'), /net-a: backend wasm, 2 worker processes, 3 layers/);
  const progress = mock.progress[mock.progress.length - 1];
  assert.equal(progress.reports.filter((r) => r.increment).length, 3, 'one increment per layer');
  // The same analysis in one worker (the saved report removed so it is recomputed): the same maps.
  rmSync(path.join(ws, '.infodiscard', file));
  configure({ tau: 0.015, workers: 1 });
  await run('infodiscard.analyzeModel', Uri.file(modelA));
  const one = readJson(reportFiles().find((f) => !before.has(f))!);
  assert.equal(one.status, 'complete');
  for (const [i, layer] of one.layers.entries()) assert.deepEqual(two.layers[i].perImage.map((p) => p.map), layer.perImage.map((p) => p.map), layer.name);
});

test('splitSamples: always makes the free worker share each layer\'s samples; never keeps one worker per layer', { timeout: 120_000 }, async () => {
  const analyse = async (splitSamples: string) => {
    configure({ tau: 0.017, workers: 2, splitSamples, images: 'images/x0.png' });
    mock.messages.length = 0;
    mock.log.length = 0;
    const before = new Set(reportFiles());
    await run('infodiscard.analyzeModel', Uri.file(modelA));
    assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
    const file = reportFiles().find((f) => !before.has(f))!;
    const report = readJson(file);
    rmSync(path.join(ws, '.infodiscard', file));
    return { report, log: mock.log.join('\n') };
  };
  const team = await analyse('always');
  assert.equal(team.report.status, 'complete');
  assert.match(team.log, /net-a: backend wasm, 2 worker processes, each layer's 4 noise samples split over 2, 3 layers/);
  const alone = await analyse('never');
  assert.doesNotMatch(alone.log, /split over/);
  // The team takes one process's steps: the same step counts, SIDs equal up to summation order.
  for (const [i, layer] of alone.report.layers.entries()) {
    const [a, b] = [layer.perImage[0], team.report.layers[i].perImage[0]];
    assert.equal(b.steps, a.steps, layer.name);
    assert.ok(Math.abs(b.sidMean - a.sidMean) < 1e-3, `${layer.name}: ${b.sidMean} vs ${a.sidMean}`);
  }
});

test('previewFirst: the first-order preview, then the search, charted together in one panel', { timeout: 120_000 }, async () => {
  configure({ tau: 0.016, previewFirst: true });
  mock.messages.length = 0;
  const before = new Set(reportFiles());
  const panelsBefore = mock.panels.length;
  await run('infodiscard.analyzeModel', Uri.file(modelA));
  assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
  const made = reportFiles().filter((f) => !before.has(f)).map(readJson);
  assert.equal(made.length, 2, 'a preview report and an optimised one');
  const preview = made.find((r) => r.settings.preview)!;
  const optimised = made.find((r) => !r.settings.preview)!;
  assert.ok(preview.layers.every((l) => l.perImage.every((p) => p.stopReason === 'preview' && p.steps === 0)));
  assert.ok(optimised.layers.every((l) => l.perImage.every((p) => p.stopReason !== 'preview' && p.steps > 0)));
  assert.equal(optimised.status, 'complete');
  // One panel with both series, the preview first; both progress notifications ran in that order.
  assert.equal(mock.panels.length, panelsBefore + 1);
  const panel = ReportPanel.all().find((p) => p.sources.length === 2 && p.sources[0].label === 'net-a (first-order preview)');
  assert.ok(panel, 'the panel charts the preview and the optimised run');
  assert.equal(panel.sources[1].label, 'net-a');
  const titles = mock.progress.slice(-2).map((p) => p.options.title);
  assert.deepEqual(titles, ['SID of net-a (first-order preview)', 'SID of net-a']);
  // Run again: both reports are reused, nothing is recomputed.
  const progressBefore = mock.progress.length;
  await run('infodiscard.analyzeModel', Uri.file(modelA));
  assert.equal(mock.progress.length, progressBefore, 'both saved reports reused');
});

test('errors: a bad setting offers to open it; a file that is not a model gives one line naming it', { timeout: 60_000 }, async () => {
  configure({ alpha: -1 });
  mock.messages.length = 0;
  await run('infodiscard.analyzeModel', Uri.file(modelA));
  assert.equal(mock.messages.length, 1);
  assert.match(mock.messages[0].message, /^infodiscard: setting "infodiscard\.alpha" must be a number in \(0, 100\], got -1$/);
  assert.deepEqual(mock.messages[0].items, ['Open Settings']);

  configure();
  mock.messages.length = 0;
  const notModel = path.join(ws, 'models', 'package.json');
  writeFileSync(notModel, JSON.stringify({ name: 'x', weightsManifest: [] }));
  await run('infodiscard.analyzeModel', Uri.file(notModel));
  // Shown after the progress closes: give the notification a moment.
  await new Promise((r) => setTimeout(r, 50));
  const errors = mock.messages.filter((m) => m.level === 'error');
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /^infodiscard: .*package\.json: [^\n]+$/);
  assert.ok(errors[0].items.includes('Show Log'));
});

/** RU, concentration and baselines of one layer, as the engine reports them (schema 2). */
function withMetrics(layer: LayerResult, metrics: string[], psnr = 18.25): LayerResult {
  const decoder = { key: 'k', psnr, trainLoss: 0.011, heldOutLoss: 0.013, epochs: 7, trainImages: 4, heldOutImages: 1, cached: false, seconds: 2.5 };
  return {
    ...layer,
    ...(metrics.includes('ru') ? { ru: { mean: 1.25, std: 0.125, total: 80, decoder } } : {}),
    ...(metrics.includes('concentration') ? { concentration: { mean: 0.375, std: 0.0625, images: 2 } } : {}),
    ...(metrics.includes('baselines') ? { baselines: { gradNorm: { mean: 0.00456, std: 0.001 }, gradCam: null, cam: null } } : {}),
  };
}

test('layer log line: RU with the decoder\'s PSNR, concentration and |grad| after the SID figures', () => {
  const layer = sampleReport().layers[0];
  assert.doesNotMatch(layerLogLine(layer, 0, 3, 1.5), /RU|concentration|grad/);
  const line = layerLogLine(withMetrics(layer, ['ru', 'concentration', 'baselines']), 0, 3, 1.5);
  assert.match(line, /^\[1\/3\] conv2d_1 \(Conv2D\): SID .* s; RU 1\.250 ± 0\.125 nats\/pixel \(decoder 18\.3 dB, 7 epochs, 2\.5 s\); concentration 0\.375 ± 0\.063 \(2 images\); \|grad\| 0\.00456$/);
  assert.match(layerLogLine({ ...layer, concentration: null }, 0, 3, 1.5), /; concentration: no image has an object region$/);
});

test('metrics settings reach the worker: training images, decoder cache, boxes; RU progress and warnings; superset reuse', { timeout: 60_000 }, async () => {
  const model = await saveLayersModel(reluConvNet(8, 3), path.join(ws, 'models', 'net-m'));
  mkdirSync(path.join(ws, 'images-m'));
  mkdirSync(path.join(ws, 'train-m'));
  [0, 1].forEach((i) => writeGrayPng(path.join(ws, 'images-m', `m${i}.png`), 8, 8, (x, y) => ((x * y + i) % 7) / 7));
  [0, 1, 2].forEach((i) => writeGrayPng(path.join(ws, 'train-m', `t${i}.png`), 8, 8, (x, y) => ((x + y + i) % 5) / 5));
  writeFileSync(path.join(ws, 'images-m', 'boxes.json'), JSON.stringify({ 'm0.png': { bbox: [1, 1, 4, 4] } }));
  const sha = (await ctx.store.modelHash(model))!;

  // A pool that records what it is asked and answers like the worker: events, then a complete report.
  const calls: AnalyzeParams[] = [];
  const fakePool = {
    pids: [] as number[],
    async dispose() {},
    async run(params: AnalyzeParams, handlers: { onEvent?: (e: AnalysisEvent) => void }) {
      calls.push(params);
      const metrics = params.settings.metrics ?? ['sid'];
      const r = sampleReport();
      r.model = { ...r.model, path: params.modelPath, sha256: sha };
      r.settings = { ...params.settings, backend: 'wasm' };
      r.layers = r.layers.map((l) => withMetrics(l, metrics, 12.34));
      const emit = (e: AnalysisEvent) => handlers.onEvent?.(e);
      const layer = r.layers[0].name;
      emit({ type: 'started', layers: r.requestedLayers, images: 2, backend: 'wasm' });
      emit({ type: 'layerStarted', layer, index: 0, total: 3 });
      if (metrics.includes('ru')) {
        emit({ type: 'phase', layer, phase: 'decoder', detail: 'training on 5 images' });
        emit({ type: 'decoderEpoch', layer, epoch: 1, maxEpochs: 2, trainLoss: 0.05, heldOutLoss: 0.06 });
        emit({ type: 'decoderEpoch', layer, epoch: 2, maxEpochs: 2, trainLoss: 0.011, heldOutLoss: 0.013 });
        emit({ type: 'warning', layer, message: 'decoder reconstructs poorly (12.3 dB)' });
        emit({ type: 'phase', layer, phase: 'ru' });
        emit({ type: 'step', layer, image: 0, step: 3, maxSteps: 20, ratio: 1.4, entropy: -1, elapsedMs: 5, metric: 'ru' });
      }
      emit({ type: 'warning', message: 'a second warning, for the log only' });
      r.layers.forEach((result, index) => emit({ type: 'layerDone', layer: result.name, index, total: 3, result }));
      writeReport(params.reportPath, r);
      emit({ type: 'done', report: r });
      return { status: 'complete' as const, reportPath: params.reportPath };
    },
  };
  const realPool = ctx.pool;
  ctx.pool = (() => fakePool) as unknown as typeof ctx.pool;
  try {
    configure({ images: 'images-m', metrics: ['ru', 'concentration'], decoder: 'light', trainImages: 'train-m', native: 'off' });
    mock.messages.length = 0;
    mock.log.length = 0;
    await run('infodiscard.analyzeModel', Uri.file(model));
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
    assert.equal(calls.length, 1);
    const p = calls[0];
    assert.deepEqual(p.settings.metrics, ['sid', 'ru', 'concentration']);
    assert.equal(p.native, 'off', 'infodiscard.native travels in the request');
    assert.deepEqual(p.settings.decoder, LIGHT_DECODER);
    assert.deepEqual(p.trainImages, [0, 1, 2].map((i) => path.join(ws, 'train-m', `t${i}.png`)), 'absolute paths of the training images');
    assert.equal(p.decoderCacheDir, path.join(reports, 'decoders'), 'inside the reports folder');
    assert.equal(p.boxesFile, path.join(ws, 'images-m', 'boxes.json'), 'boxes.json found beside the images');
    assert.deepEqual(p.images, [0, 1].map((i) => path.join(ws, 'images-m', `m${i}.png`)));
    assert.match(path.basename(p.reportPath), /^net-m-[0-9a-f]{12}-[0-9a-f]{10}-ru[0-9a-f]{6}-conc[0-9a-f]{6}\.json$/);

    // Progress: the decoder's phase and epochs, RU steps; log: epochs, warnings, RU and PSNR per layer.
    const progress = mock.progress[mock.progress.length - 1].reports.map((r) => r.message ?? '');
    assert.ok(progress.includes('conv2d_1 · training the RU decoder (training on 5 images)'), progress.join('\n'));
    assert.ok(progress.some((m) => /^conv2d_1 · decoder epoch 2\/2 · held-out loss 0\.0130$/.test(m)), 'the last epoch is always shown');
    const log = mock.log.join('\n');
    assert.match(log, /net-m: metrics SID, ru, concentration; RU decoders train on 3 more images and the analysis images, cached in .*decoders; object regions from .*boxes\.json/);
    assert.match(log, /net-m: conv2d_1: decoder epoch 1\/2, loss 0\.0500, held-out 0\.0600/);
    assert.match(log, /warn net-m: layer "conv2d_1": decoder reconstructs poorly \(12\.3 dB\)/);
    assert.match(log, /warn net-m: a second warning, for the log only/);
    assert.match(log, /\[1\/3\] conv2d_1 \(Conv2D\): SID .*; RU 1\.250 ± 0\.125 nats\/pixel \(decoder 12\.3 dB, 7 epochs, 2\.5 s\); concentration 0\.375/);
    assert.match(log, /net-m: complete in [\d.]+ s, 2 warnings/);
    const warnings = mock.messages.filter((m) => m.level === 'warning');
    assert.equal(warnings.length, 1, 'one warning notification per run');
    assert.equal(warnings[0].message, 'infodiscard: net-m: layer "conv2d_1": decoder reconstructs poorly (12.3 dB)');
    assert.deepEqual(warnings[0].items, ['Show Log']);

    // Fewer metrics than the saved report: reused. More: analysed again.
    mock.log.length = 0;
    configure({ images: 'images-m', metrics: ['concentration'], decoder: 'light', trainImages: 'train-m' });
    await run('infodiscard.analyzeModel', Uri.file(model));
    configure({ images: 'images-m', metrics: [], trainImages: 'train-m' });
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.equal(calls.length, 1, 'a report with more metrics answers SID and concentration alone');
    assert.equal(mock.log.filter((l) => /net-m: model and settings unchanged, reusing .*-ru[0-9a-f]{6}-conc[0-9a-f]{6}\.json \(it measured more metrics\)/.test(l)).length, 2);
    configure({ images: 'images-m', metrics: ['ru', 'concentration', 'baselines'], decoder: 'light', trainImages: 'train-m' });
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.equal(calls.length, 2, 'baselines were not measured: analysed again');
    configure({ images: 'images-m', metrics: ['ru'], decoder: 'default', trainImages: 'train-m' });
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.equal(calls.length, 3, 'another decoder: analysed again');
    assert.equal(calls[2].settings.decoder?.blocks, 6);
    assert.equal(calls[2].boxesFile, undefined, 'no boxes without concentration');

    // Concentration without any boxes file: said once, as a warning naming the setting.
    rmSync(path.join(ws, 'images-m', 'boxes.json'));
    mock.messages.length = 0;
    configure({ images: 'images-m', metrics: ['concentration'] });
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.equal(calls.length, 4);
    assert.equal(calls[3].boxesFile, undefined);
    assert.equal(calls[3].trainImages, undefined, 'no RU, no training images');
    const w = mock.messages.filter((m) => m.level === 'warning');
    assert.equal(w.length, 1);
    assert.match(w[0].message, /^infodiscard: net-m: concentration needs object regions: no boxes\.json beside the images; set "infodiscard\.boxesFile"/);

    // infodiscard.resize / transparency reach the worker and the report key (unset above: no imageOptions at all).
    assert.ok(calls.every((c) => c.imageOptions === undefined), 'defaults: nothing sent');
    mock.log.length = 0;
    configure({ images: 'images-m', resize: 'center-crop', transparency: 'composite:255,255,255' });
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.equal(calls.length, 5, 'another resize mode: analysed again');
    assert.deepEqual(calls[4].imageOptions, { resize: 'center-crop', alpha: { mode: 'composite', background: [1, 1, 1] } });
    assert.match(mock.log.join('\n'), /net-m: images fitted with resize center-crop, transparency composite:255,255,255/);

    // A bad metrics setting stops before anything runs, offering to open it.
    mock.messages.length = 0;
    configure({ images: 'images-m', metrics: ['ru', 'psnr'] });
    await run('infodiscard.analyzeModel', Uri.file(model));
    assert.equal(calls.length, 5);
    assert.equal(mock.messages.length, 1);
    assert.match(mock.messages[0].message, /^infodiscard: setting "infodiscard\.metrics" lists unknown metric "psnr"/);
    assert.deepEqual(mock.messages[0].items, ['Open Settings']);
  } finally {
    ctx.pool = realPool;
  }
});
