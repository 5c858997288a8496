/**
 * "Compare Checkpoints in Folder…" with the real worker (dist/worker.js, forked) and the mocked VS Code: a folder of
 * three checkpoints (epoch-NN/model.json) is analysed in epoch order under one progress notification, the panel
 * gets 'compareEpochs' with the epochs and fills in; a second run reuses every report; a bad checkpoint gets one
 * error line and the rest go on; layers not in every checkpoint are left out (and logged); Cancel keeps the
 * finished checkpoints; the panel is restored with its epoch view; a folder with one model is one error line.
 */
import { makeExtensionContext, mock, Uri, window as vsWindow } from './helpers/vscode-mock';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import type { Report } from '../src/engine/report';
import type { PanelState, ToWebview } from '../src/protocol';
import { activate } from '../src/extension/main';
import type { Ctx } from '../src/extension/ctx';
import { checkpointsFromState, ReportPanel, sourcesFromState } from '../src/extension/panel';
import { openPanel, panelPage, post as postTo, webviewBrowser } from './helpers/webviewPage';
import { sampleReport, sampleReportV2 } from './fixtures/sample-report';
import { randomArray, reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';

const ROOT = path.resolve(__dirname, '..');
const ws = tempDir('infodiscard-ckpt-ext-');
const runDir = path.join(ws, 'run');
const reports = path.join(ws, '.infodiscard');
let ctx: Ctx;

type CompareEpochs = Extract<ToWebview, { type: 'compareEpochs' }>;

const run = (...args: unknown[]) => mock.commands.get('infodiscard.compareCheckpoints')!(...args) as Promise<void>;
const reportFiles = () => (existsSync(reports) ? readdirSync(reports).filter((f) => f.endsWith('.json')).sort() : []);
const readJson = (f: string) => JSON.parse(readFileSync(path.join(reports, f), 'utf8')) as Report;
const errors = () => mock.messages.filter((m) => m.level === 'error');
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

function configure(extra: Record<string, unknown> = {}): void {
  mock.config.clear();
  for (const [k, v] of Object.entries({ images: 'images', backend: 'wasm', maxSteps: 20, samplesPerStep: 4, ...extra })) mock.config.set(`infodiscard.${k}`, v);
}

/** The last 'compareEpochs' a panel got after the webview said 'ready'. */
async function lastEpochs(panelIndex = mock.panels.length - 1): Promise<CompareEpochs> {
  const panel = mock.panels[panelIndex];
  panel.receive({ type: 'ready' });
  await tick();
  const got = (panel.webview.posted as ToWebview[]).filter((m): m is CompareEpochs => m.type === 'compareEpochs').pop();
  assert.ok(got, 'compareEpochs posted');
  return got;
}

/** conv1, conv2 like reluConvNet, then a differently named last layer (an architecture change mid-run). */
async function saveRenamedNet(dir: string): Promise<string> {
  const input = tfl.input({ shape: [8, 8, 1] });
  let y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv1' }).apply(input) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv2' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'conv_head' }).apply(y) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: y });
  let s = 40;
  for (const layer of model.layers) {
    const w = layer.getWeights();
    if (w.length) layer.setWeights(w.map((t) => tf.tensor(randomArray(t.size, s++, 0.4), t.shape)));
  }
  return saveLayersModel(model, dir);
}

before(async () => {
  mock.reset();
  mock.workspaceFolders.push({ uri: Uri.file(ws), name: 'ws', index: 0 });
  // Three checkpoints of one run, saved out of order; the folder also holds a training log.
  for (const e of [3, 1, 2]) await saveLayersModel(reluConvNet(8, 10 + e), path.join(runDir, `epoch-0${e}`));
  writeFileSync(path.join(runDir, 'history.json'), JSON.stringify({ loss: [0.9, 0.5, 0.4] }));
  mkdirSync(path.join(ws, 'images'));
  [0, 1].forEach((i) => writeGrayPng(path.join(ws, 'images', `x${i}.png`), 8, 8, (x, y) => ((x + 3 * y + 4 * i) % 17) / 17));
  ctx = activate(makeExtensionContext(ROOT, path.join(ws, 'storage')) as never);
});

after(async () => {
  ReportPanel.all().forEach((p) => p.dispose());
  await ctx?.dispose();
  rmSync(ws, { recursive: true, force: true });
});

test('a folder of 3 checkpoints: 3 analyses in epoch order, one progress notification, the epoch chart fills in', { timeout: 120_000 }, async () => {
  configure();
  await run(Uri.file(runDir), [Uri.file(runDir)]);
  assert.deepEqual(errors(), []);

  // Three reports, one per checkpoint, complete.
  const files = reportFiles();
  assert.equal(files.length, 3);
  const byModel = new Map(files.map((f) => [readJson(f).model.path, readJson(f)]));
  for (const e of [1, 2, 3]) {
    const r = byModel.get(path.join(runDir, `epoch-0${e}`, 'model.json'));
    assert.equal(r?.status, 'complete', `epoch ${e}`);
    assert.deepEqual(r.layers.map((l) => l.name), ['conv1', 'conv2', 'conv3']);
  }

  // One cancellable notification for the whole run, "checkpoint i/n: layer …", in epoch order, adding up to 100.
  assert.equal(mock.progress.length, 1);
  const progress = mock.progress[0];
  assert.equal(progress.options.cancellable, true);
  assert.equal(progress.options.title, 'SID of 3 checkpoints in run');
  const messages = progress.reports.map((r) => r.message ?? '');
  const firstLayer = (i: number) => messages.findIndex((m) => m.startsWith(`checkpoint ${i}/3: layer conv1 (1/3)`));
  assert.ok(firstLayer(1) >= 0 && firstLayer(1) < firstLayer(2) && firstLayer(2) < firstLayer(3), messages.join('\n'));
  assert.ok(messages.includes('checkpoint 2/3: layer conv2 (2/3) · epoch-02'), messages.join('\n'));
  const total = progress.reports.reduce((a, r) => a + (r.increment ?? 0), 0);
  assert.ok(Math.abs(total - 100) < 1e-6, `increments add up to ${total}`);

  // Log: the order found, each checkpoint's layers, the summary.
  const log = mock.log.join('\n');
  assert.match(log, /run: 3 checkpoints in .*run \(epochs 1, 2, 3\): epoch-01, epoch-02, epoch-03/);
  assert.match(log, /epoch-01: \[1\/3\] conv1 \(Conv2D\): SID/);
  assert.match(log, /run: done: 3 analysed, 0 reused of 3 checkpoints/);
  assert.doesNotMatch(log, /left out/);

  // The panel: titled by the folder, 'compareEpochs' with every checkpoint's epoch, series in epoch order.
  assert.equal(mock.panels.length, 1);
  const panel = mock.panels[0];
  assert.equal(panel.title, 'SID vs epoch: run (3)');
  const msg = await lastEpochs();
  assert.deepEqual(msg.epochs, [1, 2, 3]);
  assert.deepEqual(msg.view, { folder: runDir, axis: 'epoch' });
  assert.deepEqual(msg.series.map((s) => [s.label, s.epoch, s.report.status]), [['epoch-01', 1, 'complete'], ['epoch-02', 2, 'complete'], ['epoch-03', 3, 'complete']]);
  assert.deepEqual(msg.series.map((s) => s.report.model.path), [1, 2, 3].map((e) => path.join(runDir, `epoch-0${e}`, 'model.json')));
  // The panel state carries the view and the epochs (for restore), sent before the content.
  const posted = panel.webview.posted as ToWebview[];
  const state = posted.find((m) => m.type === 'panelState') as Extract<ToWebview, { type: 'panelState' }>;
  assert.deepEqual(state.state.checkpoints, { folder: runDir, axis: 'epoch' });
  assert.deepEqual(state.state.sources.map((s) => s.epoch), [1, 2, 3]);
  assert.ok(posted.findIndex((m) => m.type === 'panelState') < posted.findIndex((m) => m.type === 'compareEpochs'));
  // It filled in: before the last checkpoint finished, a message with fewer complete series went out.
  const counts = posted.filter((m): m is CompareEpochs => m.type === 'compareEpochs').map((m) => m.series.length);
  assert.equal(counts[counts.length - 1], 3);
});

test('unchanged checkpoints and settings: every report reused, no worker run; from the palette with a folder picker', { timeout: 60_000 }, async () => {
  configure();
  mock.log.length = 0;
  let dialog: { canSelectFolders?: boolean; canSelectFiles?: boolean } | undefined;
  mock.answer.openDialog = (options) => {
    dialog = options as typeof dialog;
    return [Uri.file(runDir)];
  };
  const panelsBefore = mock.panels.length;
  const revealed = mock.panels[0].revealed;
  await run();
  mock.answer.openDialog = undefined;
  assert.equal(dialog?.canSelectFolders, true);
  assert.equal(dialog?.canSelectFiles, false);
  assert.deepEqual(errors(), []);
  assert.equal(reportFiles().length, 3);
  const log = mock.log.join('\n');
  assert.equal(mock.log.filter((l) => /epoch-0\d: model and settings unchanged, reusing/.test(l)).length, 3);
  assert.match(log, /run: done: 0 analysed, 3 reused of 3 checkpoints/);
  assert.doesNotMatch(log, /analysing/);
  assert.equal(mock.panels.length, panelsBefore, 'the same panel');
  assert.ok(mock.panels[0].revealed > revealed, 'revealed');
});

test('a bad checkpoint: one error line naming it, the rest go on; a layer not in every checkpoint is left out', { timeout: 120_000 }, async () => {
  configure();
  writeFileSync(path.join(runDir, 'epoch-04.h5'), 'this is not an HDF5 file at all');
  await saveRenamedNet(path.join(runDir, 'epoch-05'));
  mock.messages.length = 0;
  mock.log.length = 0;
  const progressBefore = mock.progress.length;
  await run(Uri.file(runDir));
  await tick(50);
  assert.equal(mock.progress.length, progressBefore + 1, 'one notification');
  const errs = errors();
  assert.equal(errs.length, 1, JSON.stringify(errs));
  assert.match(errs[0].message, /^infodiscard: checkpoint epoch-04\.h5 failed: [^\n]+$/);
  const log = mock.log.join('\n');
  assert.match(log, /run: checkpoint 4\/5 epoch-04\.h5 failed: /);
  assert.match(log, /epoch-05: \[3\/3\] conv_head \(Conv2D\)/, 'the checkpoint after the bad one was analysed');
  assert.match(log, /run: done: 1 analysed, 3 reused, 1 failed of 5 checkpoints/);
  assert.match(log, /run: the epoch chart shows the 2 layers all 4 checkpoints have; left out \(not in every checkpoint\): conv3, conv_head/);

  const msg = await lastEpochs();
  assert.deepEqual(msg.epochs, [1, 2, 3, 4, 5]);
  assert.deepEqual(msg.series.map((s) => s.epoch), [1, 2, 3, 5], 'the failed checkpoint has no report');
  assert.equal(mock.panels[mock.panels.length - 1].title, 'SID vs epoch: run (5)');
  rmSync(path.join(runDir, 'epoch-04.h5'));
  rmSync(path.join(runDir, 'epoch-05'), { recursive: true });
});

test('Cancel stops the run and keeps the finished checkpoints; the panel restores with its epoch view', { timeout: 120_000 }, async () => {
  // New settings: every checkpoint is analysed again, slowly enough to cancel in the second.
  configure({ maxSteps: 300, samplesPerStep: 16, tau: 0.012 });
  mock.messages.length = 0;
  mock.log.length = 0;
  const before = new Set(reportFiles());
  const done = run(Uri.file(runDir));
  const t0 = Date.now();
  let entry: (typeof mock.progress)[number] | undefined;
  while (Date.now() - t0 < 60_000) {
    entry = mock.progress[mock.progress.length - 1];
    if (entry && !entry.done && entry.reports.some((r) => /^checkpoint 2\/3: layer /.test(r.message ?? ''))) break;
    await tick(5);
  }
  entry!.cancel();
  await done;
  assert.deepEqual(errors(), [], 'a cancel is not an error');
  const fresh = reportFiles().filter((f) => !before.has(f)).map(readJson);
  const of = (e: number) => fresh.find((r) => r.model.path === path.join(runDir, `epoch-0${e}`, 'model.json'));
  assert.equal(of(1)?.status, 'complete', 'the first checkpoint finished and is kept');
  assert.ok(!of(3), 'the third never started');
  assert.match(mock.log.join('\n'), /run: cancelled: 1 analysed, 0 reused, (1 cancelled, )?\d not run of 3 checkpoints/);

  const panel = mock.panels[mock.panels.length - 1];
  const msg = await lastEpochs();
  assert.deepEqual(msg.epochs, [1, 2, 3]);
  assert.equal(msg.series[0].report.status, 'complete');
  assert.equal(msg.series[0].epoch, 1);

  // Reload: VS Code hands the webview's saved state to the serializer; the restored panel shows the same view.
  const saved = (panel.webview.posted as ToWebview[]).find((m) => m.type === 'panelState') as { state: PanelState };
  const restored = vsWindow.makeRestoredPanel('infodiscard.report', 'infodiscard');
  await mock.serializers.get('infodiscard.report')!.deserializeWebviewPanel(restored, { panel: saved.state, layer: 'conv2' });
  await tick(50);
  assert.equal(restored.title, 'SID vs epoch: run (3)');
  const back = await lastEpochs(mock.panels.indexOf(restored));
  assert.deepEqual(back.epochs, [1, 2, 3]);
  assert.deepEqual(back.view, { folder: runDir, axis: 'epoch' });
  assert.equal(back.series[0].report.status, 'complete');
  assert.deepEqual(back.series.map((s) => s.epoch), msg.series.map((s) => s.epoch));
});

test('a folder with one model: one error line naming the folder, nothing run', async () => {
  configure();
  mock.messages.length = 0;
  const progressBefore = mock.progress.length;
  const one = path.join(runDir, 'epoch-01');
  await run(Uri.file(one));
  assert.equal(mock.progress.length, progressBefore);
  const errs = errors();
  assert.equal(errs.length, 1);
  assert.equal(errs[0].message, `infodiscard: ${one}: holds one model file only (model.json); Compare Checkpoints needs two or more: .h5, .hdf5, .keras, .onnx or TensorFlow.js model.json files, or subfolders with a model.json`);
});

test('restore state is untrusted: a bad view restores a plain panel; checkpoints keep their epochs and may be many', () => {
  const sources = Array.from({ length: 40 }, (_, i) => ({ path: `/r/e${i}.json`, label: `e${i}`, epoch: i + 1 }));
  const view = { folder: '/runs/a', axis: 'epoch' };
  assert.deepEqual(checkpointsFromState({ panel: { sources, checkpoints: view } }), view);
  const restored = sourcesFromState({ panel: { sources, checkpoints: view } });
  assert.equal(restored.length, 40, 'a training run has more checkpoints than a compare panel has models');
  assert.deepEqual(restored[3], { path: '/r/e3.json', label: 'e3', epoch: 4 });
  // Without a valid view: a compare panel of at most 32 reports (an example family across 3 seeds has up to 21), no epochs.
  for (const bad of [{ folder: '/runs/a', axis: 'steps' }, { folder: 7, axis: 'epoch' }, 'x', null]) {
    const state = { panel: { sources, checkpoints: bad } };
    assert.equal(checkpointsFromState(state), undefined, JSON.stringify(bad));
    assert.equal(sourcesFromState(state).length, 32);
    assert.equal(sourcesFromState(state)[0].epoch, undefined);
  }
  // A checkpoint source without a numeric epoch is dropped.
  const odd = sourcesFromState({ panel: { sources: [{ path: '/r/a.json', label: 'a', epoch: '3' }, { path: '/r/b.json', label: 'b', epoch: 2 }], checkpoints: view } });
  assert.deepEqual(odd, [{ path: '/r/b.json', label: 'b', epoch: 2 }]);
});

// ---------------------------------------------------------------------------------------------------------------
// The webview: the epoch chart in headless Chromium (the panel's page and CSP, a stub acquireVsCodeApi).


test('webview: "SID per layer vs epoch" fills in, RU dashed, exports, name-order axis, gone for a plain compare', { timeout: 120_000 }, async (t) => {
  const chrome = await webviewBrowser(t, 'infodiscard-ckpt-webview-');
  if (!chrome) return;
  const { page, problems } = await openPanel(chrome.browser, panelPage(chrome.dir));
  await page.waitForFunction(() => (window as unknown as { __posted: unknown[] }).__posted.length > 0);
  const post = (m: ToWebview) => postTo(page, m);
  const attr = async (name: string) => page.locator('canvas[data-chart="epochs"]').getAttribute(name);

  const ckpt = (shift: number, v2 = false, finishedLayers?: number) => {
    const r = v2 ? sampleReportV2({ finishedLayers, status: finishedLayers ? 'running' : 'complete' }) : sampleReport({ finishedLayers, status: finishedLayers ? 'running' : 'complete' });
    r.layers = r.layers.map((l) => ({ ...l, sid: { ...l.sid, mean: l.sid.mean + shift } }));
    return r;
  };
  const layers = sampleReport().requestedLayers;
  const view = { folder: '/runs/mnist', axis: 'epoch' as const };
  const sources = [1, 5, 10].map((e) => ({ path: `/r/e${e}.json`, label: `epoch-${e}`, epoch: e }));
  await post({ type: 'panelState', state: { sources, checkpoints: view } });

  await t.test('the first checkpoint, still running: its finished layer is on the chart, the axis spans every epoch', async () => {
    await post({ type: 'compareEpochs', view, epochs: [1, 5, 10], series: [{ label: 'epoch-1', epoch: 1, report: ckpt(0, false, 1), source: '/r/e1.json' }] });
    await page.waitForSelector('canvas[data-chart="epochs"]');
    assert.equal(await attr('data-epochs'), '[1,5,10]');
    assert.equal(await attr('data-axis'), 'epoch');
    assert.deepEqual(JSON.parse((await attr('data-series')) ?? '[]'), layers);
    assert.equal(await attr('data-points'), '1,0,0');
    const card = page.locator('section[aria-label="SID per layer vs epoch"]');
    assert.equal(await card.locator('h2').textContent(), 'SID per layer vs epoch');
    assert.match((await card.locator('.id-hint').textContent()) ?? '', /1 of 3 checkpoints so far/);
  });

  await t.test('all three, two with RU: one SID line per layer and a dashed RU line where measured', async () => {
    await post({
      type: 'compareEpochs', view, epochs: [1, 5, 10], series: [
        { label: 'epoch-1', epoch: 1, report: ckpt(0, true), source: '/r/e1.json' },
        { label: 'epoch-5', epoch: 5, report: ckpt(0.2), source: '/r/e5.json' },
        { label: 'epoch-10', epoch: 10, report: ckpt(0.3, true), source: '/r/e10.json' },
      ],
    });
    await page.waitForSelector('section[aria-label="SID and RU per layer vs epoch"]');
    assert.deepEqual(JSON.parse((await attr('data-series')) ?? '[]'), layers.flatMap((l) => [`${l} · SID`, `${l} · RU`]));
    assert.equal(await attr('data-points'), '3,2,3,2,3,2');
    assert.match((await page.locator('.id-chart-box canvas[data-chart="sid"]').locator('xpath=ancestor::section').locator('h2').textContent()) ?? '', /per layer, 3 checkpoints$/);
    assert.doesNotMatch((await page.locator('section[aria-label="SID and RU per layer vs epoch"] .id-hint').textContent()) ?? '', /so far/);
    await page.locator('section[aria-label="SID and RU per layer vs epoch"] vscode-button', { hasText: 'Export PNG' }).click();
    const saves = (await page.evaluate(() => (window as unknown as { __posted: { type: string; filename?: string; data?: string }[] }).__posted)).filter((m) => m.type === 'save');
    assert.equal(saves.length, 1);
    assert.equal(saves[0].filename, 'infodiscard-checkpoints-epochs.png');
    assert.match(saves[0].data ?? '', /^data:image\/png;base64,/);
    mkdirSync(path.join(ROOT, 'out', 'screenshots'), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, 'out', 'screenshots', 'panel-checkpoints.png'), fullPage: true });
    await page.locator('section[aria-label="SID and RU per layer vs epoch"]').screenshot({ path: path.join(ROOT, 'out', 'screenshots', 'panel-checkpoints-epochs.png') });
    const saved = await page.evaluate(() => (window as unknown as { __state: { panel?: PanelState } }).__state);
    assert.deepEqual(saved.panel, { sources, checkpoints: view }, 'the panel state (with the view) kept for restore');
  });

  await t.test('no epoch numbers: the axis is the name order, ticks name the checkpoints', async () => {
    const order = { folder: '/runs/sample', axis: 'order' as const };
    await post({ type: 'compareEpochs', view: order, epochs: [1, 2], series: [
      { label: 'fashion-cnn', epoch: 1, report: ckpt(0) },
      { label: 'fashion-cnn-early', epoch: 2, report: ckpt(0.1) },
    ] });
    await page.waitForSelector('section[aria-label="SID per layer vs checkpoint"]');
    assert.equal(await attr('data-axis'), 'order');
    assert.equal(await attr('data-points'), '2,2,2');
  });

  await t.test('a plain compare afterwards has no epoch chart', async () => {
    await post({ type: 'compare', series: [{ label: 'a', report: ckpt(0) }, { label: 'b', report: ckpt(0.1) }] });
    await page.waitForFunction(() => !document.querySelector('canvas[data-chart="epochs"]'));
    assert.match((await page.locator('.id-chart-box canvas[data-chart="sid"]').locator('xpath=ancestor::section').locator('h2').textContent()) ?? '', /2 models$/);
  });

  assert.deepEqual(problems, [], 'no console errors or CSP violations');
});
