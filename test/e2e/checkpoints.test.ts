/**
 * End to end, in a real VS Code (code-server, headless Chromium): right-click a folder of two checkpoints of one run
 * in the Explorer → "Compare Checkpoints in Folder…"; one progress notification, the panel "SID vs epoch: run (2)"
 * whose epoch chart fills in to both checkpoints on every layer, the reports saved; and after a window reload the
 * panel comes back with its epoch chart. Then "Compare an Example Model Family…" from the palette: the shipped
 * depth family (three plain CNNs) charted as one series per model, named, with nothing of the user's.
 *
 * The checkpoints are the sample models, which are epochs 3 (fashion-cnn) and 1 (fashion-cnn-early) of one training
 * run, copied to run/epoch-03 and run/epoch-01. Run: npm run build, then
 *   node --import tsx --test test/e2e/checkpoints.test.ts
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FrameLocator } from 'playwright-core';
import { ROOT } from './helpers/codeServer';
import { e2eSuite } from './helpers/suite';
import { waitFor, Workbench } from './helpers/workbench';

let wb: Workbench;
let dir: string | undefined;

/**
 * run/epoch-01 and run/epoch-03 (the sample models) and the six sample images. The analyses must last longer than
 * the panel takes to appear, or the chart is first seen complete and the fill-in cannot be watched: with two images
 * and 40 steps an idle machine finished both checkpoints before the webview had drawn.
 */
function makeWorkspace(): string {
  const ws = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-e2e-ckpt-'));
  const sample = path.join(ROOT, 'media', 'sample');
  cpSync(path.join(sample, 'fashion-cnn-early'), path.join(ws, 'run', 'epoch-01'), { recursive: true });
  cpSync(path.join(sample, 'fashion-cnn'), path.join(ws, 'run', 'epoch-03'), { recursive: true });
  mkdirSync(path.join(ws, 'images'));
  for (const f of readdirSync(path.join(sample, 'images')).filter((f) => f.endsWith('.png'))) cpSync(path.join(sample, 'images', f), path.join(ws, 'images', f));
  mkdirSync(path.join(ws, '.vscode'));
  writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'infodiscard.maxSteps': 200, 'infodiscard.images': 'images' }, null, 2));
  return ws;
}

const scenario = e2eSuite({
  workspace: makeWorkspace,
  folder: (ws) => ws,
  started: (s) => ({ wb, workspace: dir } = s),
  timeoutMs: 300_000,
});

/** The epoch chart's test attributes (null while it is not drawn). */
async function epochChart(frame: FrameLocator): Promise<{ epochs: number[]; series: string[]; points: string } | null> {
  const canvas = frame.locator('canvas[data-chart="epochs"]');
  if ((await canvas.count()) === 0) return null;
  const [epochs, series, points] = await Promise.all(['data-epochs', 'data-series', 'data-points'].map((a) => canvas.first().getAttribute(a, { timeout: 1_000 })));
  if (epochs === null || series === null || points === null) return null;
  return { epochs: JSON.parse(epochs) as number[], series: JSON.parse(series) as string[], points };
}

async function errorsShown(): Promise<string[]> {
  return (await wb.notifications()).filter((n) => n.severity === 'error').map((n) => n.text);
}

const SAMPLE_LAYERS = 7;
const FULL = Array(SAMPLE_LAYERS).fill(2).join(',');

scenario('Explorer → Compare Checkpoints in Folder…: one progress notification, the epoch chart fills in', 'c1-checkpoints', async () => {
  await wb.explorerContextMenu('run', 'Compare Checkpoints in Folder…');
  const progress = await waitFor('the progress notification', async () => (await wb.notifications()).find((n) => n.text.startsWith('SID of 2 checkpoints in run')), 30_000);
  assert.equal(progress.severity, 'info');

  await wb.tab('SID vs epoch: run (2)').waitFor({ timeout: 60_000 });
  const frame = wb.reportFrame();
  const seen: string[] = [];
  let shot = false;
  const final = await waitFor('both checkpoints on every layer of the epoch chart', async () => {
    const state = await epochChart(frame).catch(() => null);
    if (state && state.points !== seen[seen.length - 1]) seen.push(state.points);
    if (state && !shot && state.points !== FULL) {
      shot = true;
      await wb.screenshot('c1-checkpoints-running');
    }
    return state?.points === FULL ? state : null;
  }, 280_000, 150);
  assert.deepEqual(final.epochs, [1, 3]);
  assert.equal(final.series.length, SAMPLE_LAYERS, `one line per layer: ${final.series}`);
  assert.ok(final.series.includes('block2_conv'), `${final.series}`);
  assert.ok(seen.length >= 2, `the chart went straight to ${seen.join(' → ')}: it did not fill in`);
  const card = frame.locator('section[aria-label="SID per layer vs epoch"]');
  assert.equal(await card.locator('h2').textContent(), 'SID per layer vs epoch');
  // The per-layer compare view beside it: one series per checkpoint, in epoch order.
  const perLayer = await frame.locator('canvas[data-chart="sid"]').getAttribute('data-series');
  assert.deepEqual(JSON.parse(perLayer ?? '[]'), ['epoch-01', 'epoch-03']);

  await waitFor('the progress notification to close', async () => !(await wb.notifications()).some((n) => n.text.startsWith('SID of 2 checkpoints')), 30_000);
  const reportsDir = path.join(dir!, '.infodiscard');
  const saved = readdirSync(reportsDir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(path.join(reportsDir, f), 'utf8')) as { status: string; model: { path: string } });
  for (const e of ['epoch-01', 'epoch-03']) {
    assert.ok(saved.some((r) => r.status === 'complete' && r.model.path === path.join(dir!, 'run', e, 'model.json')), `a complete report of ${e}`);
  }
  assert.deepEqual(await errorsShown(), []);
  await wb.screenshot('c1-checkpoints-complete');
});

scenario('Reload the window: the checkpoints panel comes back with its epoch chart', 'c2-reload', async () => {
  await wb.reloadWindow();
  await wb.tab('SID vs epoch: run (2)').waitFor({ timeout: 60_000 });
  const frame = wb.reportFrame();
  const state = await waitFor('the restored epoch chart', async () => {
    const s = await epochChart(frame).catch(() => null);
    return s?.points === FULL ? s : null;
  }, 60_000);
  assert.deepEqual(state.epochs, [1, 3]);
  assert.deepEqual(await errorsShown(), []);
  await wb.screenshot('c2-reload');
});

scenario('Command palette → Compare an Example Model Family…: the shipped family, one series per model', 'c3-example', async () => {
  // Only the new panel visible, so reportFrame() finds it and not the checkpoints panel.
  await wb.closeAllEditors();
  await wb.runCommand('infodiscard: Compare an Example Model Family');
  const row = wb.quickInput.locator('.monaco-list-row').filter({ hasText: 'Plain CNNs of increasing depth' }).first();
  await row.waitFor({ timeout: 15_000 });
  assert.match((await row.textContent()) ?? '', /3 models: Plain-2, Plain-4, Plain-6/);
  await wb.screenshot('c3-example-pick');
  await row.click();
  await wb.tab('Compare: Plain-2 vs Plain-4 vs Plain-6').waitFor({ timeout: 60_000 });
  const frame = wb.reportFrame();
  const state = await waitFor('three series, each on the family\'s three layers', async () => {
    const s = await wb.chartState(frame).catch(() => null);
    return s && s.points.length === 3 && s.points.every((p) => p === 3) ? s : null;
  }, 280_000, 500);
  assert.deepEqual(state.series, ['Plain-2', 'Plain-4', 'Plain-6']);
  assert.deepEqual(await errorsShown(), []);
  await wb.screenshot('c3-example');
});
