/**
 * End to end, in a real VS Code: the built extension installed in code-server (VS Code's server with a real Node
 * extension host), driven through headless Chromium like a user would: Explorer context menu, command palette,
 * notifications, the report panel's webview, hovers, window reload.
 *
 * One code-server for the whole file (started in `before`, its process group killed in `after`); the scenarios
 * run in order in one workspace (copies of the sample models, six images, maxSteps 200). Screenshots go to
 * out/e2e/: one at each scenario's key moment, and one on failure.
 *
 * Tools (code-server, Node 24, Chromium) are installed on first use by scripts/e2e-tools.sh into .e2e-tools/.
 * Run: npm run test:e2e
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import type { FrameLocator } from 'playwright-core';
import type { CodeServer } from './helpers/codeServer';
import { e2eSuite } from './helpers/suite';
import { waitFor, Workbench } from './helpers/workbench';
import { BASE_SETTINGS, makeWorkspace, XSS_NAME, type Workspace } from './helpers/workspace';

interface ReportJson {
  status: string;
  model: { path: string };
  settings: { maxSteps: number };
  layers: { name: string; kind: string; sid: { mean: number; std: number } }[];
}

let server: CodeServer | undefined;
let wb: Workbench;
let ws: Workspace;

const scenario = e2eSuite({
  workspace: makeWorkspace,
  folder: (w) => w.dir,
  started: (s) => ({ server, wb, workspace: ws } = s),
  beforeScenario: async (page) => {
    await page.closeAllEditors();
    await page.clearNotifications();
  },
  timeoutMs: 180_000,
});

function reportFiles(prefix: string): string[] {
  if (!existsSync(ws.reportsDir)) return [];
  // <model>-<12 hex of the model's sha256>-<settings key>.json ("fashion-cnn" must not match "fashion-cnn-early").
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{12}-[^-]+\\.json$`);
  return readdirSync(ws.reportsDir).filter((f) => pattern.test(f)).map((f) => path.join(ws.reportsDir, f));
}

function readReport(file: string): ReportJson {
  return JSON.parse(readFileSync(file, 'utf8')) as ReportJson;
}

/** The newest report of a model folder with this status. */
function reportOf(prefix: string, status?: string): ReportJson | undefined {
  return reportFiles(prefix).map(readReport).filter((r) => !status || r.status === status).pop();
}

/** Waits for the panel's document to render a report with this status ('complete', 'cancelled', …). */
async function rendered(frame: FrameLocator, status: string, timeoutMs = 120_000): Promise<void> {
  await frame.locator(`.id-app[data-rendered="${status}"]`).waitFor({ timeout: timeoutMs });
}

async function editorGroups(): Promise<{ tabs: string[]; x: number }[]> {
  return wb.page.locator('.editor-group-container').evaluateAll((els) => els.map((e) => ({
    tabs: Array.from(e.querySelectorAll('.tab')).map((t) => t.getAttribute('aria-label') ?? t.textContent ?? ''),
    x: e.getBoundingClientRect().x,
  })));
}

async function errorsShown(): Promise<string[]> {
  const toasts = (await wb.notifications()).filter((n) => n.severity === 'error').map((n) => n.text);
  const dialogs = await wb.page.locator('.monaco-dialog-box').allTextContents();
  return [...toasts, ...dialogs];
}

/** The 0-based line and the column (1-based, inside the literal) of `needle` in a workspace file. */
function positionOf(relPath: string, needle: string): { line: number; column: number } {
  const lines = readFileSync(path.join(ws.dir, relPath), 'utf8').split('\n');
  const line = lines.findIndex((l) => l.includes(needle));
  assert.ok(line >= 0, `${needle} not in ${relPath}`);
  return { line: line + 1, column: lines[line].indexOf(needle) + 3 };
}

const fmt3 = (v: number): string => v.toFixed(3);

scenario('1. Explorer → Analyze Model…: progress, the panel beside the editor fills in layer by layer, heatmap, saved report', 's1-analyze', async () => {
  // The model is open in the editor, as when a user looks at it first.
  await wb.openFile(ws.models.cnn);
  await wb.explorerContextMenu(ws.models.cnn, 'Analyze Model…');

  const progress = await waitFor('the progress notification', async () => (await wb.notifications()).find((n) => n.text.startsWith('SID of fashion-cnn')), 30_000);
  assert.equal(progress.severity, 'info');

  // The panel opens beside the editor: a second group, right of the one holding model.json.
  await wb.tab('SID: fashion-cnn').waitFor({ timeout: 30_000 });
  const groups = await editorGroups();
  assert.equal(groups.length, 2, `editor groups: ${JSON.stringify(groups)}`);
  assert.ok(groups[0].tabs.some((t) => t.includes('model.json')), `left group: ${groups[0].tabs}`);
  assert.ok(groups[1].tabs.some((t) => t.includes('SID: fashion-cnn')), `right group: ${groups[1].tabs}`);
  assert.ok(groups[1].x > groups[0].x);

  // The chart gains points as layers finish.
  const frame = wb.reportFrame();
  const seen: number[] = [];
  let shot = false;
  await waitFor('the complete report in the panel', async () => {
    const state = await wb.chartState(frame).catch(() => null);
    if (state && state.points[0] !== seen[seen.length - 1]) seen.push(state.points[0]);
    // Before the first layer the card shows a waiting line, not empty axes: 0 points.
    if (!state && seen.length === 0 && (await frame.locator('[data-chart-waiting]').count().catch(() => 0)) > 0) seen.push(0);
    if (state && state.points[0] > 0 && !shot) {
      shot = true;
      await wb.screenshot('s1-analyze-running');
    }
    return (await frame.locator('.id-app[data-rendered="complete"]').count()) > 0;
  }, 150_000, 150);
  const final = await wb.chartState(frame);
  assert.deepEqual(final, { series: ['fashion-cnn'], points: [7] });
  if (seen[seen.length - 1] !== 7) seen.push(7);
  assert.ok(seen.length >= 2, `the chart went straight to ${seen.join(' → ')}: no intermediate points seen`);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `points went ${seen.join(' → ')}`);

  // A heatmap is drawn: the big canvas has many distinct colours.
  const heat = frame.locator('canvas.id-heat-canvas').first();
  await heat.waitFor({ timeout: 10_000 });
  const colours = await heat.evaluate((c: HTMLCanvasElement) => {
    const ctx = c.getContext('2d');
    if (!ctx || c.width === 0 || c.height === 0) return 0;
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    const set = new Set<number>();
    for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0) set.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return set.size;
  });
  assert.ok(colours > 20, `heatmap has ${colours} colours`);

  // The progress notification has gone; the report is in .infodiscard/.
  await waitFor('the progress notification to close', async () => !(await wb.notifications()).some((n) => n.text.startsWith('SID of fashion-cnn')), 15_000);
  const report = reportOf('fashion-cnn', 'complete');
  assert.ok(report, `no complete fashion-cnn report in ${ws.reportsDir}: ${reportFiles('fashion-cnn')}`);
  assert.equal(report.layers.length, 7);
  assert.equal(report.settings.maxSteps, BASE_SETTINGS['infodiscard.maxSteps']);
  assert.deepEqual(await errorsShown(), []);
  await wb.screenshot('s1-analyze-complete');
});

scenario('2. Command palette → Compare Layers Across Models…: one chart series per model, named', 's2-compare', async () => {
  await wb.runCommand('infodiscard: Compare Layers Across Models');
  const row = (name: string) => wb.quickInput.locator(`.monaco-list-row[aria-label^="${name}, ${name}/model.json"]`);
  for (const name of ['fashion-cnn', 'fashion-cnn-early']) {
    const r = row(name).first();
    await r.waitFor({ timeout: 15_000 });
    await r.click();
    await waitFor(`${name} checked`, async () => (await r.locator('input[type=checkbox]:checked, .monaco-checkbox.checked, [aria-checked="true"]').count()) > 0 || (await r.getAttribute('aria-checked')) === 'true', 5_000);
  }
  await wb.screenshot('s2-compare-picked');
  await wb.page.keyboard.press('Enter');

  // Series in the order of the list (the workspace's file search order).
  await wb.tab(/^Compare: (fashion-cnn vs fashion-cnn-early|fashion-cnn-early vs fashion-cnn)/).waitFor({ timeout: 30_000 });
  const frame = wb.reportFrame();
  // fashion-cnn's report from scenario 1 is reused; fashion-cnn-early is analysed now.
  const state = await waitFor('both series complete', async () => {
    const s = await wb.chartState(frame).catch(() => null);
    return s && s.points.length === 2 && s.points.every((p) => p === 7) ? s : null;
  }, 150_000);
  assert.deepEqual([...state.series].sort(), ['fashion-cnn', 'fashion-cnn-early']);
  // The picker of the series the details show names both models.
  const head = await frame.locator('.id-card').filter({ hasText: 'SID per layer, 2 models' }).textContent();
  for (const name of state.series) assert.ok(head?.includes(name), head ?? '');
  assert.ok(reportOf('fashion-cnn-early', 'complete'), 'fashion-cnn-early was analysed and saved');
  assert.deepEqual(await errorsShown(), []);
  await wb.screenshot('s2-compare');
});

scenario('3. Hover a layer name in the training script: the layer\'s SID from the report', 's3-hover', async () => {
  const report = reportOf('fashion-cnn', 'complete');
  assert.ok(report, 'needs the fashion-cnn report of scenario 1');
  const layer = report.layers.find((l) => l.name === 'block2_conv')!;
  await wb.openFile(ws.trainScript);
  const { line, column } = positionOf(ws.trainScript, 'name="block2_conv"');
  const hover = await wb.hoverAt(line, column + 'name='.length, /infodiscard/);
  const text = ((await hover.textContent()) ?? '').replace(/\s+/g, ' ');
  assert.match(text, /layer block2_conv/);
  assert.ok(text.includes(`fashion-cnn (Conv2D): SID ${fmt3(layer.sid.mean)} ± ${fmt3(layer.sid.std)} nats/pixel`), text);
  await wb.screenshot('s3-hover');
});

scenario('4. Cancel a running analysis: the worker stops, finished layers stay, no error', 's4-cancel', async () => {
  // Long enough to cancel in the middle.
  ws.setSettings({ 'infodiscard.maxSteps': 3000 });
  try {
    await new Promise((r) => setTimeout(r, 1500)); // VS Code picks up the changed settings file
    await wb.explorerContextMenu(ws.models.cancel, 'Analyze Model…');
    await wb.tab('SID: cancel-me').waitFor({ timeout: 30_000 });
    const frame = wb.reportFrame();
    // Cancel as soon as the first layer is saved (the webview may still be loading).
    const running = await waitFor('a finished layer in the saved report', () => {
      const r = reportOf('cancel-me');
      return r && r.status === 'running' && r.layers.length >= 1 ? r : undefined;
    }, 150_000, 100);
    assert.equal(running.settings.maxSteps, 3000, 'the analysis runs with the changed setting');
    // infodiscard.workers defaults to one per core: the layers run in up to that many worker processes.
    const workers = server!.workers();
    assert.ok(workers.length >= 1 && workers.length <= os.availableParallelism(), `workers: ${JSON.stringify(workers)}`);

    await wb.runCommand('infodiscard: Cancel Analysis');
    await waitFor('the progress notification to close', async () => !(await wb.notifications()).some((n) => n.text.startsWith('SID of cancel-me')), 15_000);
    const report = await waitFor('the report marked cancelled', () => reportOf('cancel-me', 'cancelled'), 15_000);
    assert.ok(report.layers.length >= 1 && report.layers.length < 7, `${report.layers.length} layers kept`);
    // The finished layers stay in the panel, which says the analysis was cancelled.
    await rendered(frame, 'cancelled', 60_000);
    assert.deepEqual(await wb.chartState(frame), { series: ['cancel-me'], points: [report.layers.length] });
    assert.deepEqual(await errorsShown(), []);
    await wb.screenshot('s4-cancel');

    // The worker process is gone after the cancel (the panel is still open), as the process table shows.
    await waitFor('no worker process left', () => server!.workers().length === 0, 10_000);
    assert.deepEqual(await errorsShown(), []);
  } finally {
    ws.setSettings({});
    await new Promise((r) => setTimeout(r, 1500));
  }
});

scenario('5. A malformed model.json: one clear error naming the file; the next analysis works', 's5-malformed', async () => {
  await wb.explorerContextMenu(ws.models.malformed, 'Analyze Model…');
  const error = await waitFor('an error notification', async () => (await errorsShown())[0], 30_000);
  await new Promise((r) => setTimeout(r, 500)); // the toast fades in
  await wb.screenshot('s5-malformed-error');
  assert.match(error, /^infodiscard: /);
  assert.ok(error.includes(path.join(ws.dir, ws.models.malformed)) || error.includes(ws.models.malformed), `the error names the file: ${error}`);
  assert.match(error, /JSON/, `the error says what is wrong: ${error}`);
  assert.equal((await wb.notifications()).filter((n) => n.severity === 'error').length, 1);

  await wb.clearNotifications();
  await wb.explorerContextMenu(ws.models.afterError, 'Analyze Model…');
  await wb.tab('SID: after-error').waitFor({ timeout: 30_000 });
  await rendered(wb.reportFrame(), 'complete', 150_000);
  assert.ok(reportOf('after-error', 'complete'));
  assert.deepEqual(await errorsShown(), []);
  await wb.screenshot('s5-after-error');
});

scenario('6. A layer named <img src=x onerror=…>: shown as text in the panel and the hover; no script runs', 's6-hostile', async () => {
  await wb.explorerContextMenu(ws.models.xss, 'Analyze Model…');
  await wb.tab('SID: hostile').waitFor({ timeout: 30_000 });
  const frame = wb.reportFrame();
  await rendered(frame, 'complete', 150_000);
  assert.ok(reportOf('hostile', 'complete')?.layers.some((l) => l.name === XSS_NAME), 'the report has the layer');
  // The name is text: in the table and the layer picker.
  await frame.locator('tbody tr', { hasText: XSS_NAME }).first().waitFor({ timeout: 10_000 });
  assert.equal(await frame.locator('img[src="x"], [onerror]').count(), 0, 'no element made from the name');
  const titles = await frame.locator(':root').evaluate(() => document.title);
  assert.notEqual(titles, 'pwned');
  await wb.screenshot('s6-hostile-panel');

  await wb.openFile(ws.xssScript);
  const { line, column } = positionOf(ws.xssScript, XSS_NAME);
  const hover = await wb.hoverAt(line, column + 4, /infodiscard/);
  const text = ((await hover.textContent()) ?? '').replace(/\s+/g, ' ');
  assert.ok(text.includes(`layer ${XSS_NAME}`), `hover: ${text}`);
  assert.match(text, /hostile \(Relu\): SID -?\d+\.\d{3} ± \d+\.\d{3} nats\/pixel/);
  assert.equal(await hover.locator('img').count(), 0, 'no <img> in the hover');
  await wb.screenshot('s6-hostile-hover');

  assert.notEqual(await wb.page.title(), 'pwned');
  for (const f of wb.page.frames()) assert.notEqual(await f.title().catch(() => ''), 'pwned', `frame ${f.url()}`);
  assert.deepEqual(wb.dialogs, []);
});

scenario('7. Reload the window with the panel open: the panel comes back with its report', 's7-reload', async () => {
  // Reopens fashion-cnn's saved report (same model and settings as scenario 1).
  await wb.explorerContextMenu(ws.models.cnn, 'Analyze Model…');
  await wb.tab('SID: fashion-cnn').waitFor({ timeout: 30_000 });
  await rendered(wb.reportFrame(), 'complete', 60_000);
  await wb.reloadWindow();
  await wb.tab('SID: fashion-cnn').waitFor({ timeout: 60_000 });
  const frame = wb.reportFrame();
  await rendered(frame, 'complete', 60_000);
  assert.deepEqual(await wb.chartState(frame), { series: ['fashion-cnn'], points: [7] });
  await frame.locator('tbody tr', { hasText: 'block2_conv' }).first().waitFor({ timeout: 10_000 });
  assert.deepEqual(await errorsShown(), []);
  await wb.screenshot('s7-reload');
});

scenario('8. The infodiscard view lists the analysed models with their reports, opens one; the walkthrough opens', 's8-view', async () => {
  await wb.runCommand('infodiscard: Focus on Reports View');
  const rows = wb.page.locator('.monaco-list-row').filter({ visible: true });
  // Scenario 1's model and scenario 2's second model, each with its complete report (7 layers).
  const texts = await waitFor('both models in the view', async () => {
    const all = await rows.allTextContents();
    return all.some((t) => /^fashion-cnn(?!-early)/.test(t)) && all.some((t) => t.startsWith('fashion-cnn-early')) ? all : null;
  }, 30_000);
  const model = texts.findIndex((t) => /^fashion-cnn(?!-early)/.test(t));
  assert.match(texts[model], /fashion-cnn\/model\.json · \d+ reports?/, texts[model]);
  assert.match(texts[model + 1], /complete · \d{4}-\d\d-\d\d \d\d:\d\d · 7 layers/, `the report under the model: ${texts[model + 1]}`);
  for (const t of texts) assert.doesNotMatch(t, /-[0-9a-f]{12}-[0-9a-f]{10}/, `no report file hash in the view: ${t}`);
  await wb.screenshot('s8-view');
  await rows.nth(model + 1).click();
  await wb.tab('SID: fashion-cnn').waitFor({ timeout: 30_000 });
  await rendered(wb.reportFrame(), 'complete', 60_000);

  await wb.runCommand('Welcome: Open Walkthrough');
  const item = wb.quickInput.locator('.monaco-list-row', { hasText: 'Get started with infodiscard' }).first();
  await item.waitFor({ timeout: 15_000 });
  await item.click();
  await wb.page.locator('.gettingStartedContainer', { hasText: 'Analyse the sample model' }).first().waitFor({ timeout: 15_000 });
  await wb.screenshot('s8-walkthrough');
  assert.deepEqual(await errorsShown(), []);
});
