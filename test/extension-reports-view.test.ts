/**
 * The activity-bar reports view against the mocked VS Code: models with their reports, reports of one model named by
 * the settings in which they differ (never a hash), layers with their SID (and RU), the inline actions (open, compare,
 * re-run, delete with confirmation), refresh on a watcher event; and the panels: one editor group for every panel,
 * titles that say what differs.
 */
import { makeExtensionContext, mock, Uri, ViewColumn, type MockTreeDataProvider, type TreeItem } from './helpers/vscode-mock';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AnalysisSettings, Report } from '../src/engine/report';
import { writeReport } from '../src/engine/reportFile';
import { activate } from '../src/extension/main';
import { ReportPanel } from '../src/extension/panel';
import { differingNames, type ReportFacts } from '../src/extension/views/settingsDiff';
import type { ModelNode, ReportNode, TreeNode } from '../src/extension/views/reportsTree';
import { sampleReport, sampleReportV2 } from './fixtures/sample-report';

const ROOT = path.resolve(__dirname, '..');
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

function facts(settings: Partial<AnalysisSettings>, over: Partial<ReportFacts> = {}): ReportFacts {
  const base = sampleReport().settings;
  return { settings: { ...base, ...settings }, modelSha: 'a', images: 6, requestedLayers: 3, createdAt: '2026-01-01T00:00:00Z', ...over };
}

test('differingNames: only the settings that differ, in a fixed order; never a hash', () => {
  assert.deepEqual(differingNames([facts({ alpha: 1.5 }), facts({ alpha: 2 })]), ['α 1.5', 'α 2']);
  assert.deepEqual(
    differingNames([facts({ alpha: 1.5, samples: 16, sigmaGrid: 16 }), facts({ alpha: 2, samples: 8, sigmaGrid: null })]),
    ['α 1.5 · K 16 · σ-grid 16', 'α 2 · K 8 · σ per pixel'],
  );
  assert.deepEqual(differingNames([facts({ inputRange: [0, 1] }), facts({ inputRange: [0, 255] })]), ['input 0–1', 'input 0–255']);
  assert.deepEqual(differingNames([facts({}, { images: 6 }), facts({}, { images: 100 })]), ['6 images', '100 images']);
  assert.deepEqual(differingNames([facts({ preview: true }), facts({})]), ['first-order preview', 'optimised']);
  // Same settings, other model weights: the version, relative to the newest report.
  assert.deepEqual(
    differingNames([facts({}, { modelSha: 'new', createdAt: '2026-02-01T00:00:00Z' }), facts({}, { modelSha: 'old' })]),
    ['this model version', 'earlier model version'],
  );
  // Nothing differs: the date tells them apart.
  const same = differingNames([facts({}, { createdAt: '2026-01-01T10:00:00Z' }), facts({}, { createdAt: '2026-01-02T10:00:00Z' })]);
  assert.equal(new Set(same).size, 2);
  for (const n of same) assert.match(n, /^\d{4}-\d\d-\d\d \d\d:\d\d$/);
  assert.deepEqual(differingNames([facts({})]), ['']);
  for (const n of differingNames([facts({ alpha: 1 }, { modelSha: 'ab'.repeat(32) }), facts({ alpha: 3 }, { modelSha: 'cd'.repeat(32) })])) {
    assert.doesNotMatch(n, /[0-9a-f]{6,}/, 'no hash in a name');
  }
});

interface Setup {
  dir: string;
  folder: string;
  modelA: string;
  modelB: string;
  provider: MockTreeDataProvider;
  dispose(): Promise<void>;
}

function report(modelPath: string, createdAt: string, settings: Partial<AnalysisSettings>, v2 = false): Report {
  const r = v2 ? sampleReportV2() : sampleReport();
  r.model = { ...r.model, path: modelPath };
  r.createdAt = createdAt;
  r.settings = { ...r.settings, ...settings };
  return r;
}

async function setup(): Promise<Setup> {
  mock.reset();
  for (const p of ReportPanel.all()) p.dispose();
  mock.panels.length = 0;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-view-'));
  const folder = path.join(dir, '.infodiscard');
  mkdirSync(path.join(dir, 'web', 'fashion-cnn'), { recursive: true });
  const modelA = path.join(dir, 'web', 'fashion-cnn', 'model.json');
  const modelB = path.join(dir, 'mnist.h5');
  writeFileSync(modelA, '{}');
  writeFileSync(modelB, 'x');
  // Model A: three reports differing in α and K (the newest has σ-grid like the others); model B: one, relative path.
  writeReport(path.join(folder, 'fashion-cnn-aaaaaaaaaaaa-1111111111.json'), report(modelA, '2026-01-01T10:00:00.000Z', { alpha: 1.5, samples: 16 }));
  writeReport(path.join(folder, 'fashion-cnn-aaaaaaaaaaaa-2222222222.json'), report(modelA, '2026-01-02T10:00:00.000Z', { alpha: 2, samples: 16 }));
  writeReport(path.join(folder, 'fashion-cnn-aaaaaaaaaaaa-3333333333.json'), report(modelA, '2026-01-03T10:00:00.000Z', { alpha: 2, samples: 8 }));
  writeReport(path.join(folder, 'mnist-bbbbbbbbbbbb-4444444444.json'), { ...report('mnist.h5', '2025-12-01T10:00:00.000Z', {}, true), status: 'failed', error: 'boom' });
  mock.workspaceFolders.push({ uri: Uri.file(dir), name: 'w', index: 0 });
  const context = makeExtensionContext(ROOT, path.join(dir, 'storage'));
  const ctx = activate(context as never);
  const view = mock.treeViews.get('infodiscard.reports');
  assert.ok(view, 'the reports view is registered at activation');
  return {
    dir, folder, modelA, modelB, provider: view.provider,
    async dispose() {
      for (const p of ReportPanel.all()) p.dispose();
      await ctx.dispose();
      for (const d of context.subscriptions) d.dispose();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function children(p: MockTreeDataProvider, node?: unknown): Promise<TreeNode[]> {
  return ((await p.getChildren(node)) ?? []) as TreeNode[];
}
const item = async (p: MockTreeDataProvider, node: unknown): Promise<TreeItem> => p.getTreeItem(node);

test('reports view: models, their reports named by the settings that differ, layers with SID and RU', async () => {
  const s = await setup();
  try {
    assert.equal(mock.watchers.length, 0, 'nothing read or watched before the view is shown');
    const models = (await children(s.provider)) as ModelNode[];
    assert.deepEqual(models.map((m) => m.name), ['fashion-cnn', 'mnist'], 'newest model first');
    assert.equal(models[1].modelPath, s.modelB, 'a relative model path resolves against the workspace folder');
    const modelItem = await item(s.provider, models[0]);
    assert.equal(modelItem.label, 'fashion-cnn');
    assert.equal(modelItem.description, 'web/fashion-cnn/model.json · 3 reports');
    assert.equal(modelItem.contextValue, 'infodiscard.model');

    const reports = (await children(s.provider, models[0])) as ReportNode[];
    const items = await Promise.all(reports.map((r) => item(s.provider, r)));
    assert.deepEqual(items.map((i) => i.label), ['α 2 · K 8', 'α 2 · K 16', 'α 1.5 · K 16'], 'newest first, named by α and K only');
    for (const i of items) {
      assert.doesNotMatch(String(i.label), /[0-9a-f]{8}/, 'no hash');
      assert.match(String(i.description), /^complete · \d{4}-\d\d-\d\d \d\d:\d\d · 3 layers$/);
      assert.equal(i.contextValue, 'infodiscard.report.complete');
      assert.equal(i.command?.command, 'infodiscard.reports.open');
      assert.equal(i.iconPath?.id, 'pass');
    }
    const lone = (await children(s.provider, models[1])) as ReportNode[];
    const loneItem = await item(s.provider, lone[0]);
    assert.match(String(loneItem.label), /^\d{4}-\d\d-\d\d \d\d:\d\d$/, 'a model\'s only report: its date');
    assert.equal(loneItem.iconPath?.id, 'error');
    assert.equal(loneItem.contextValue, 'infodiscard.report.failed');

    const layers = await children(s.provider, reports[0]);
    const layerItems = await Promise.all(layers.map((l) => item(s.provider, l)));
    const expected = sampleReport().layers;
    assert.deepEqual(layerItems.map((i) => i.label), expected.map((l) => l.name));
    assert.equal(layerItems[0].description, `SID ${expected[0].sid.mean.toFixed(3)} ± ${expected[0].sid.std.toFixed(3)}`);
    assert.deepEqual(layerItems[0].command?.arguments, [{ report: reports[0].summary.path, layer: expected[0].name }]);
    // A schema-2 report with RU: the layer rows add it.
    const ruLayers = await Promise.all((await children(s.provider, lone[0])).map((l) => item(s.provider, l)));
    assert.ok(ruLayers.some((i) => /^SID -?\d+\.\d{3} ± \d+\.\d{3} · RU -?\d+\.\d{3}$/.test(String(i.description))), JSON.stringify(ruLayers.map((i) => i.description)));
    assert.equal(mock.watchers.length, 1, 'one watcher on the reports folder');
  } finally {
    await s.dispose();
  }
});

test('reports view: refreshes when a report file appears or goes (watcher, debounced)', async () => {
  const s = await setup();
  try {
    await children(s.provider);
    let fired = 0;
    s.provider.onDidChangeTreeData?.(() => fired++);
    const file = path.join(s.folder, 'fashion-cnn-aaaaaaaaaaaa-5555555555.json');
    writeReport(file, report(s.modelA, '2026-01-04T10:00:00.000Z', { alpha: 3, samples: 8 }));
    mock.watchers[0].create.fire(Uri.file(file) as never);
    mock.watchers[0].change.fire(Uri.file(file) as never);
    await tick(350);
    assert.equal(fired, 1, 'two events, one refresh');
    const models = (await children(s.provider)) as ModelNode[];
    const names = await Promise.all(models[0].reports.map(async (r) => (await item(s.provider, r)).label));
    assert.deepEqual(names, ['α 3 · K 8', 'α 2 · K 8', 'α 2 · K 16', 'α 1.5 · K 16']);
    rmSync(file);
    mock.watchers[0].delete.fire(Uri.file(file) as never);
    await tick(350);
    assert.equal(((await children(s.provider)) as ModelNode[])[0].reports.length, 3);
  } finally {
    await s.dispose();
  }
});

test('reports view: open (title says what differs), compare (one group, "Compare: a vs b"), re-run, delete after confirming', async () => {
  const s = await setup();
  try {
    const models = (await children(s.provider)) as ModelNode[];
    const [newest, middle] = models[0].reports;

    await mock.commands.get('infodiscard.reports.open')!(newest);
    const first = mock.panels[0];
    assert.equal(first.createdIn, ViewColumn.Beside, 'the first panel opens beside the code');
    for (let i = 0; i < 250 && !(first.title.includes('α') && first.title.includes('stale')); i++) await tick();
    // (stale: the fixture's model hash is not the dummy model file's.)
    assert.equal(first.title, 'SID: fashion-cnn · α 2 · K 8 (stale)', 'the tab says which of the model\'s reports it is');

    // Compare with the model's other report: a second panel, in the same group as the first.
    mock.answer.quickPick = (items) => (items as { node?: ReportNode }[]).find((i) => i.node?.summary.path === middle.summary.path);
    await mock.commands.get('infodiscard.reports.compare')!(newest);
    const second = mock.panels[1];
    assert.ok(second, 'a compare panel');
    assert.equal(second.createdIn, first.viewColumn, 'in the group of the open panel, not a new group beside it');
    assert.match(second.title, /^Compare: fashion-cnn · K 8 vs fashion-cnn · K 16( \(stale\))?$/);
    // Opening the first again reveals it where it is.
    await mock.commands.get('infodiscard.reports.open')!(newest);
    assert.equal(mock.panels.length, 2);
    assert.deepEqual(first.revealedIn, [undefined], 'revealed in its own group');

    // Re-run: Analyze Model on the report's model.
    mock.executed.length = 0;
    await mock.commands.get('infodiscard.reports.rerun')!(middle);
    assert.equal(mock.executed[0]?.command, 'infodiscard.analyzeModel');
    assert.equal((mock.executed[0]?.args[0] as Uri).fsPath, s.modelA);
    rmSync(s.modelA);
    mock.messages.length = 0;
    await mock.commands.get('infodiscard.reports.rerun')!(middle);
    assert.match(mock.messages[0]?.message ?? '', /model file is gone/);

    // Delete: asks first (modal); "no" keeps the file, "Delete" removes it (to the trash) and closes its panel.
    const file = newest.summary.path;
    mock.answer.message = () => undefined;
    await mock.commands.get('infodiscard.reports.delete')!(newest);
    assert.ok(existsSync(file), 'dismissed: kept');
    const ask = mock.messages.find((m) => m.level === 'warning');
    assert.match(ask?.message ?? '', /Delete the infodiscard report "fashion-cnn · α 2 · K 8"/);
    mock.answer.message = (_m, items) => items.find((i) => i === 'Delete');
    await mock.commands.get('infodiscard.reports.delete')!(newest);
    assert.ok(!existsSync(file), 'deleted');
    assert.deepEqual(mock.deleted.map((d) => d.options), [{ useTrash: true }]);
    assert.equal(first.disposed, true, 'its panel closed');
    assert.equal(second.disposed, false, 'the compare panel stays (it shows the other report too)');
    const left = ((await children(s.provider)) as ModelNode[])[0].reports;
    assert.equal(left.length, 2);
    // A node from elsewhere (a command run with any argument) does nothing.
    await mock.commands.get('infodiscard.reports.delete')!({ kind: 'report' });
    await mock.commands.get('infodiscard.reports.open')!('nonsense');
  } finally {
    await s.dispose();
  }
});
