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
import type { Report } from '../src/engine/report';
import type { ToWebview } from '../src/protocol';
import type { Ctx } from '../src/extension/ctx';
import { ReportPanel } from '../src/extension/panel';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';

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

function configure(extra: Record<string, unknown> = {}): void {
  mock.config.clear();
  for (const [k, v] of Object.entries({ images: 'images', backend: 'wasm', maxSteps: 20, samplesPerStep: 4, ...extra })) mock.config.set(`infodiscard.${k}`, v);
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
  assert.equal(panel.title, 'SID: net-a vs net-b (stale)', 'net-a changed since its report');
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
});

test('no images setting: a quick pick with the sample images first; Browse… choices become recent ones', { timeout: 120_000 }, async () => {
  configure({ images: '' });
  let items: { label: string; description?: string }[] = [];
  mock.answer.quickPick = (list) => {
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
