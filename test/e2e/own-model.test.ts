/**
 * End to end, in a real VS Code (code-server, headless Chromium): a user's own model (issue 13), through the menus,
 * quick picks and the panel as a user does it.
 *  a. The first analysis of a third-party 0–255 Keras checkpoint asks for the preprocessing, with the model's top
 *     predictions under each choice, and recommends 0–255 first; accepting it analyses at 0–255 (report and chip).
 *  b. infodiscard.layers "ask": the layer picker, recommended layers pre-checked with output shapes; a subset chosen
 *     by unchecking and checking rows is exactly what the report has.
 *  c. The analysis process killed mid-run (as the OOM killer would): the panel says FAILED, the progress notification
 *     closes, the status bar says failed, an error notification names the cause.
 *  d. Cancel after a layer is saved, Analyze again: the finished layers are reused (report and panel say so), only
 *     the rest is computed, the run ends complete.
 *
 * One code-server for the file, one workspace (copies of the sample model per scenario, the Keras checkpoint from
 * ../shared/data beside the clone, 28×28 digits). Screenshots in out/e2e/. Run: npm run build, then
 *   node --import tsx --test --test-concurrency=1 test/e2e/own-model.test.ts
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FrameLocator } from 'playwright-core';
import type { Report } from '../../src/engine/report';
import { type CodeServer, ROOT } from './helpers/codeServer';
import { e2eSuite } from './helpers/suite';
import { kerasCheckpoint, writeDigits } from './helpers/ownModel';
import { quickPickRows, statusBarTexts, waitFor, waitForQuickPick, Workbench } from './helpers/workbench';

const KERAS = kerasCheckpoint();
const noKeras = KERAS ? undefined : 'no ../shared/data/keras-mnist-dnn-repair/saved-model-01-0.96.hdf5 beside the clone';

let server: CodeServer | undefined;
let wb: Workbench;
let dir: string | undefined;

const MODELS = { keras: 'keras/saved-model-01-0.96.hdf5', picker: 'picker/model.json', crash: 'crash-me/model.json', resume: 'resume-me/model.json' };

/** Settings every scenario starts from: short analyses, no prompts (each scenario turns on what it shows). */
const BASE = {
  'infodiscard.images': 'images',
  'infodiscard.maxSteps': 200,
  'infodiscard.layers': 'all',
  'infodiscard.preprocessingPrompt': false,
};

/** Scenario a's settings: the workspace starts with them, so the first analysis never races a settings change. */
const FIRST_ANALYSIS = { 'infodiscard.images': 'digits', 'infodiscard.preprocessingPrompt': true, 'infodiscard.layers': 'recommended' };

function makeWorkspace(): string {
  const ws = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-e2e-own-'));
  const sample = path.join(ROOT, 'media', 'sample');
  // One copy of the sample model per scenario: each its own reports.
  for (const m of ['picker', 'crash-me', 'resume-me']) cpSync(path.join(sample, 'fashion-cnn'), path.join(ws, m), { recursive: true });
  mkdirSync(path.join(ws, 'images'));
  for (const f of readdirSync(path.join(sample, 'images')).filter((f) => f.endsWith('.png'))) cpSync(path.join(sample, 'images', f), path.join(ws, 'images', f));
  if (KERAS) {
    mkdirSync(path.join(ws, 'keras'));
    cpSync(KERAS, path.join(ws, MODELS.keras));
  }
  writeDigits(path.join(ws, 'digits'));
  mkdirSync(path.join(ws, '.vscode'));
  writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ ...BASE, ...FIRST_ANALYSIS }, null, 2));
  return ws;
}

/** Rewrites the workspace settings (BASE plus `extra`) and gives VS Code time to read them (a loaded machine is slow). */
async function setSettings(extra: Record<string, unknown>): Promise<void> {
  writeFileSync(path.join(dir!, '.vscode', 'settings.json'), JSON.stringify({ ...BASE, ...extra }, null, 2));
  await new Promise((r) => setTimeout(r, 4_000));
}

const scenario = e2eSuite({
  workspace: makeWorkspace,
  folder: (ws) => ws,
  started: (s) => ({ server, wb, workspace: dir } = s),
  beforeScenario: async (page) => {
    await page.closeAllEditors();
    await page.clearNotifications();
  },
  afterScenario: () => setSettings({}),
  timeoutMs: 300_000,
});

const reportsDir = (): string => path.join(dir!, '.infodiscard');

/** The saved reports of a model (by its report-name prefix: the file name, or the folder of a model.json). */
function reportsOf(prefix: string): { file: string; report: Report }[] {
  if (!existsSync(reportsDir())) return [];
  const pattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{12}-[^-]+\\.json$`);
  return readdirSync(reportsDir()).filter((f) => pattern.test(f)).flatMap((f) => {
    try {
      return [{ file: path.join(reportsDir(), f), report: JSON.parse(readFileSync(path.join(reportsDir(), f), 'utf8')) as Report }];
    } catch {
      return []; // being written
    }
  });
}

function reportOf(prefix: string, status?: string): Report | undefined {
  return reportsOf(prefix).map((r) => r.report).filter((r) => !status || r.status === status).pop();
}

async function rendered(frame: FrameLocator, status: string, timeoutMs = 180_000): Promise<void> {
  await frame.locator(`.id-app[data-rendered="${status}"]`).waitFor({ timeout: timeoutMs });
}

async function errorsShown(): Promise<string[]> {
  return (await wb.notifications()).filter((n) => n.severity === 'error').map((n) => n.text);
}

scenario('a. First analysis of a 0–255 Keras checkpoint: asked for the preprocessing, 0–255 recommended first with top predictions; accepted, analysed at 0–255', 'o1-preprocessing', async () => {
  // The workspace was opened with these settings (FIRST_ANALYSIS).
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir!, '.vscode', 'settings.json'), 'utf8')), { ...BASE, ...FIRST_ANALYSIS });
  await wb.explorerContextMenu(MODELS.keras, 'Analyze Model…');

  // The check runs in a worker first (the model loads there), then the question.
  const rows = await waitForQuickPick(wb, 'preprocessing of', 180_000);
  await new Promise((r) => setTimeout(r, 300));
  await wb.screenshot('o1-preprocessing-pick');
  const labels = rows.map((r) => r.label);
  assert.equal(labels[0], '0–255', `the recommended choice first: ${JSON.stringify(rows)}`);
  assert.match(rows[0].description, /^recommended: at \[0, 1\] the outputs look degenerate/, rows[0].description);
  assert.ok(rows[0].focused, 'the recommended choice is the one Enter takes');
  // Top predictions under each choice: confident and varied at 0–255, flagged at [0, 1].
  assert.match(rows[0].detail, /^#1 class \d \(\d\.\d\d\), #2 class \d \(\d\.\d\d\), #3 class \d \(\d\.\d\d\)$/, `top predictions at 0–255: ${rows[0].detail}`);
  const zeroOne = rows.find((r) => r.label === '[0, 1]');
  assert.ok(zeroOne, `a [0, 1] choice: ${labels}`);
  assert.match(zeroOne.detail, /looks wrong/, `[0, 1] flagged: ${zeroOne.detail}`);
  // The unset infodiscard.inputRange (read as its default "0,1") is not presented as the user's setting.
  assert.equal(zeroOne.description, 'default: the model file says nothing');
  assert.ok(labels.includes('Custom…'), `${labels}`);

  await wb.page.keyboard.press('Enter');
  await wb.tab('SID: saved-model-01-0.96').waitFor({ timeout: 120_000 });
  const frame = wb.reportFrame();
  await rendered(frame, 'complete', 240_000);
  const report = reportOf('saved-model-01-0.96', 'complete');
  assert.ok(report, `a complete report in ${reportsDir()}`);
  assert.equal(report.settings.preprocessing?.preset, '[0,255]');
  assert.deepEqual(report.settings.inputRange, [0, 255]);
  assert.deepEqual(report.layers.map((l) => l.name), ['activation_2', 'max_pooling2d_1', 'activation_3', 'activation_4'], 'the recommended layers');
  // The header chip says it, with the action to change it.
  const chip = frame.locator('.id-chip.id-preprocessing');
  await chip.waitFor({ timeout: 10_000 });
  assert.match((await chip.textContent()) ?? '', /^preprocessing\s*0–255$/);
  await frame.locator('vscode-button, button', { hasText: 'Edit preprocessing…' }).first().waitFor({ timeout: 10_000 });
  // Stored for the model: beside the reports.
  const stored = readdirSync(path.join(reportsDir(), 'preprocessing'));
  assert.ok(stored.some((f) => f.startsWith('saved-model-01-0.96-')), `${stored}`);
  assert.deepEqual(await errorsShown(), []);
  await wb.screenshot('o1-preprocessing-panel');
}, { skip: noKeras, timeoutMs: 420_000 });

scenario('b. infodiscard.layers "ask": the picker has the recommended layers checked, with shapes; the chosen subset is what the report has', 'o2-layers', async () => {
  await setSettings({ 'infodiscard.layers': 'ask' });
  await wb.explorerContextMenu(MODELS.picker, 'Analyze Model…');
  const rows = await waitForQuickPick(wb, 'layers of picker', 120_000);
  const layerRow = (name: string) => rows.find((r) => r.label === name);
  const recommended = ['block1_conv', 'block2_conv', 'block3_conv', 'gap', 'predictions'];
  const all = ['block1_conv', 'block1_pool', 'block2_conv', 'block2_pool', 'block3_conv', 'gap', 'predictions'];
  for (const name of all) assert.ok(layerRow(name), `${name} listed: ${rows.map((r) => r.label)}`);
  assert.deepEqual(all.filter((n) => layerRow(n)!.checked), recommended, 'the recommended layers pre-checked');
  assert.equal(layerRow('block1_conv')!.description, 'Conv2D [28, 28, 8]', 'kind and output shape');
  assert.equal(layerRow('gap')!.description, 'GlobalAveragePooling2D [32]');
  assert.match(rows[0].label, /^Recommended layers \(5 of 7\)$/);

  // Uncheck gap and predictions, check block1_pool: a click on a row toggles it.
  const row = (name: string) => wb.quickInput.locator(`.quick-input-list .monaco-list-row[aria-label^="${name}, "]`).first();
  for (const name of ['gap', 'predictions', 'block1_pool']) {
    const before = layerRow(name)!.checked;
    await row(name).click();
    await waitFor(`${name} toggled`, async () => (await quickPickRows(wb)).find((r) => r.label === name)?.checked === !before, 5_000);
  }
  const chosen = ['block1_conv', 'block1_pool', 'block2_conv', 'block3_conv'];
  const now = await quickPickRows(wb);
  assert.deepEqual(all.filter((n) => now.find((r) => r.label === n)?.checked), chosen);
  await wb.screenshot('o2-layers-pick');
  await wb.page.keyboard.press('Enter');

  await wb.tab('SID: picker').waitFor({ timeout: 60_000 });
  const frame = wb.reportFrame();
  await rendered(frame, 'complete', 240_000);
  const report = reportOf('picker', 'complete');
  assert.ok(report);
  assert.deepEqual(report.layers.map((l) => l.name), chosen, 'exactly the chosen layers');
  assert.deepEqual(report.requestedLayers, chosen);
  // The table lists those four.
  const names = await frame.locator('.id-table tbody td.name').allTextContents();
  assert.deepEqual(names, chosen);
  assert.deepEqual(await errorsShown(), []);
  await wb.screenshot('o2-layers-panel');
});

scenario('c. The analysis process killed mid-run: FAILED in the panel, the progress closes, the status bar says failed, an error names the cause', 'o3-crash', async () => {
  // One worker (as on a one-core machine): its death ends the run at once. Many steps: it is killed mid-run.
  await setSettings({ 'infodiscard.workers': 1, 'infodiscard.maxSteps': 3000 });
  await wb.explorerContextMenu(MODELS.crash, 'Analyze Model…');
  await wb.tab('SID: crash-me').waitFor({ timeout: 60_000 });
  const frame = wb.reportFrame();
  const running = await waitFor('a finished layer in the saved report', () => {
    const r = reportOf('crash-me');
    return r && r.status === 'running' && r.layers.length >= 1 ? r : undefined;
  }, 240_000, 100);
  assert.equal(running.settings.maxSteps, 3000);
  await rendered(frame, 'running', 60_000);
  const workers = server!.workers();
  assert.equal(workers.length, 1, `one worker: ${JSON.stringify(workers)}`);
  process.kill(workers[0].pid, 'SIGKILL');

  // The status bar says how it ended (for 15 s): watched from the kill on.
  const status = await waitFor('the status bar saying failed', async () => (await statusBarTexts(wb)).find((t) => /SID crash-me: failed/.test(t)), 14_000, 100);
  assert.match(status, /stopped unexpectedly/);
  await rendered(frame, 'failed', 60_000);
  const banner = (await frame.locator('.id-banner.failed').textContent()) ?? '';
  assert.match(banner, /^Analysis failed: .*stopped unexpectedly \(signal SIGKILL/, banner);
  assert.match((await frame.locator('.id-badge').first().textContent()) ?? '', /^failed$/);
  assert.equal(await frame.locator('td', { hasText: 'running…' }).count(), 0, 'no tile or row still says running');
  const error = await waitFor('an error notification', async () => (await errorsShown())[0], 30_000);
  assert.match(error, /^infodiscard: analysis of crash-me failed: the analysis process stopped unexpectedly \(signal SIGKILL; out of memory\?\)/, error);
  await waitFor('the progress notification to close', async () => !(await wb.notifications()).some((n) => n.text.startsWith('SID of crash-me')), 30_000);
  const report = reportOf('crash-me');
  assert.equal(report?.status, 'failed', 'the saved report says failed');
  assert.ok((report?.layers.length ?? 0) >= 1, 'the finished layers are kept');
  await wb.screenshot('o3-crash');
}, { timeoutMs: 420_000 });

scenario('d. Cancel after a layer is saved, Analyze again: the finished layers are reused (report and panel), the rest computed, complete', 'o4-resume', async () => {
  // The default worker count (one per core): layers run in parallel; enough steps that the cancel lands mid-run.
  await setSettings({ 'infodiscard.maxSteps': 200 });
  await wb.explorerContextMenu(MODELS.resume, 'Analyze Model…');
  await wb.tab('SID: resume-me').waitFor({ timeout: 60_000 });
  await waitFor('a finished layer in the saved report', () => {
    const r = reportOf('resume-me');
    return r && r.status === 'running' && r.layers.length >= 1 ? r : undefined;
  }, 240_000, 100);
  await wb.runCommand('infodiscard: Cancel Analysis');
  const cancelled = await waitFor('the report marked cancelled', () => reportOf('resume-me', 'cancelled'), 30_000);
  const kept = cancelled.layers.map((l) => l.name);
  assert.ok(kept.length >= 1 && kept.length < 7, `${kept.length} layers kept`);
  await rendered(wb.reportFrame(), 'cancelled', 60_000);
  await waitFor('the progress notification to close', async () => !(await wb.notifications()).some((n) => n.text.startsWith('SID of resume-me')), 30_000);
  await wb.screenshot('o4-resume-cancelled');

  await wb.closeAllEditors();
  await wb.explorerContextMenu(MODELS.resume, 'Analyze Model…');
  await wb.tab('SID: resume-me').waitFor({ timeout: 60_000 });
  const frame = wb.reportFrame();
  await rendered(frame, 'complete', 240_000);
  const files = reportsOf('resume-me');
  assert.equal(files.length, 1, 'the same report file, resumed, not a second one');
  const report = files[0].report;
  assert.equal(report.status, 'complete');
  assert.equal(report.layers.length, 7);
  const reused = report.layers.filter((l) => l.reused === true).map((l) => l.name);
  assert.deepEqual(reused, kept, 'the cancelled run\'s layers are reused, the others computed');
  for (const name of kept) {
    assert.deepEqual(report.layers.find((l) => l.name === name)!.sid, cancelled.layers.find((l) => l.name === name)!.sid, `${name} taken over as it was`);
  }
  // The panel marks them: a "reused" tag on each such row, and the count in the header.
  await waitFor('the reused rows marked', async () => (await frame.locator('.id-table tbody tr[data-reused="true"]').count()) === kept.length, 15_000);
  const marked = await frame.locator('.id-table tbody tr[data-reused="true"] td.name').allTextContents();
  assert.deepEqual(marked, kept);
  assert.equal(await frame.locator('.id-table tbody tr[data-reused="true"] .tag.reused').count(), kept.length);
  const layersFact = (await frame.locator('.id-meta div').filter({ has: frame.locator('dt', { hasText: /^Layers$/ }) }).first().textContent()) ?? '';
  assert.match(layersFact, new RegExp(`^Layers\\s*7 of 7, ${kept.length} reused$`), layersFact);
  assert.deepEqual(await errorsShown(), []);
  await frame.locator('.id-table').scrollIntoViewIfNeeded();
  await wb.screenshot('o4-resume-complete');
}, { timeoutMs: 480_000 });
