/**
 * Open Report… on a folder of shard parts (the mocked VS Code): complete parts are merged into the folder's
 * merged-report.json and shown; with a shard missing, a warning names it and offers the partial report; a mixture
 * of analyses is refused with one line. The partial report's page shows its missing shards (headless Chromium).
 */
import { makeExtensionContext, mock, Uri } from './helpers/vscode-mock';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { activate } from '../src/extension/main';
import type { Ctx } from '../src/extension/ctx';
import { ReportPanel } from '../src/extension/panel';
import type { Report } from '../src/engine/report';
import { analysisKey, assignShards, partName, shardJobs, type ShardPart } from '../src/engine/shards';
import { sampleReport } from './fixtures/sample-report';
import { tempDir } from './helpers/fixtures';
import { loadWebviewBundle, renderReportHtml } from '../src/report-html/render';

const ROOT = path.resolve(__dirname, '..');
const ws = tempDir('infodiscard-ext-shards-');
let ctx: Ctx;
const run = (id: string, ...args: unknown[]) => mock.commands.get(id)!(...args) as Promise<void>;

/** The parts `count` shards would write for `report`: its (layer, image) jobs, each job's layer on its image. */
function partsOf(report: Report, count: number): ShardPart[] {
  const layers = report.layers.map((l) => l.name);
  const jobs = shardJobs(layers, layers.map((_, i) => i), report.images.length, 28 * 28, true);
  const header: Report = { ...report, layers: [], requestedLayers: layers };
  return assignShards(jobs, count).map((mine, index) => ({
    format: 'infodiscard-shard',
    version: 1,
    shard: { index, count },
    runKey: 'k',
    key: analysisKey(header, jobs),
    jobs,
    results: mine.map((j) => {
      const layer = report.layers[jobs[j].layerIndex];
      return { job: j, result: { ...layer, perImage: layer.perImage.filter((p) => p.image === jobs[j].images![0]) } };
    }),
    report: header,
    seconds: 1,
  }));
}

function writeParts(dir: string, parts: ShardPart[]): void {
  mkdirSync(dir, { recursive: true });
  for (const p of parts) writeFileSync(path.join(dir, partName(p.shard)), JSON.stringify(p));
}

before(() => {
  mock.reset();
  mock.workspaceFolders.push({ uri: Uri.file(ws), name: 'ws', index: 0 });
  ctx = activate(makeExtensionContext(ROOT, path.join(ws, 'storage')) as never);
});

after(async () => {
  ReportPanel.all().forEach((p) => p.dispose());
  await ctx?.dispose();
  rmSync(ws, { recursive: true, force: true });
});

test('Open Report… on a folder of complete parts merges them and shows the report', async () => {
  const report = sampleReport();
  const dir = path.join(ws, 'parts');
  writeParts(dir, partsOf(report, 3));
  const panels = mock.panels.length;
  await run('infodiscard.openReport', Uri.file(dir));
  assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
  const merged = JSON.parse(readFileSync(path.join(dir, 'merged-report.json'), 'utf8')) as Report;
  assert.equal(merged.status, 'complete');
  assert.deepEqual(merged.layers.map((l) => l.name), report.layers.map((l) => l.name));
  assert.deepEqual(merged.layers.map((l) => l.perImage.map((p) => p.map)), report.layers.map((l) => l.perImage.map((p) => p.map)));
  assert.equal(mock.panels.length, panels + 1, 'the panel opens');
  assert.ok(ReportPanel.all().some((p) => p.sources.some((s) => s.path === path.join(dir, 'merged-report.json'))));
});

test('a missing shard is named, and the partial report opens on request (from the quick pick\'s Open Shard Parts…)', async () => {
  const dir = path.join(ws, 'parts-missing');
  writeParts(dir, partsOf(sampleReport(), 4).filter((p) => p.shard.index !== 2));
  mock.answer.quickPick = (items) => (items as { browseParts?: boolean }[]).find((i) => i.browseParts);
  mock.answer.openDialog = () => [Uri.file(dir)];
  mock.answer.message = (_message, buttons) => buttons[0];
  mock.messages.length = 0;
  await run('infodiscard.openReport');
  const warning = mock.messages.find((m) => m.level === 'warning');
  assert.ok(warning, 'a warning');
  assert.match(warning.message, /parts-missing: 1 of 4 shards missing: 2; run them \(--shard I\/4\) and merge again/);
  assert.deepEqual(warning.items, ['Open Partial Report']);
  const partial = JSON.parse(readFileSync(path.join(dir, 'partial-report.json'), 'utf8')) as Report;
  assert.equal(partial.status, 'partial');
  assert.deepEqual(partial.shards, { count: 4, missing: [2] });
  assert.ok(ReportPanel.all().some((p) => p.sources.some((s) => s.path === path.join(dir, 'partial-report.json'))));

  // Dismissed: nothing is written or opened.
  const other = path.join(ws, 'parts-missing-2');
  writeParts(other, partsOf(sampleReport(), 4).filter((p) => p.shard.index !== 0));
  mock.answer.message = () => undefined;
  await run('infodiscard.openReport', Uri.file(path.join(other, 'shard-1-of-4.json')));
  assert.ok(!existsSync(path.join(other, 'partial-report.json')));
});

test('parts of different analyses are refused with one line', async () => {
  const dir = path.join(ws, 'parts-mixed');
  const parts = partsOf(sampleReport(), 2);
  parts[1].key.modelSha256 = 'cd'.repeat(32);
  writeParts(dir, parts);
  mock.messages.length = 0;
  await run('infodiscard.openReport', Uri.file(dir));
  const error = mock.messages.find((m) => m.level === 'error');
  assert.ok(error, 'an error');
  assert.match(error.message, /shard-1-of-2\.json: analysed another model \(sha256 cdcdcdcdcdcd…, not abababababab…\)/);
  assert.ok(!existsSync(path.join(dir, 'merged-report.json')));
});

test('the page of a partial report says which shards are missing (headless Chromium)', { skip: existsSync('/usr/bin/chromium') ? false : '/usr/bin/chromium not installed' }, async () => {
  const { chromium } = await import('playwright-core');
  const report: Report = { ...sampleReport({ finishedLayers: 2 }), status: 'partial', shards: { count: 4, missing: [1, 3] } };
  const file = path.join(ws, 'partial.html');
  writeFileSync(file, renderReportHtml(report, loadWebviewBundle(path.join(ROOT, 'dist'))));
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`file://${file}`);
    await page.waitForSelector('.id-app[data-rendered="partial"]');
    const total = report.requestedLayers.length;
    assert.equal((await page.locator('.id-badge').textContent())?.trim(), `partial · 2/${total}`);
    assert.match((await page.locator('.id-banner.partial').textContent()) ?? '', new RegExp(`Partial report\\. Merged from 2 of 4 shards; missing: 1, 3\\. 2 of ${total} layers are complete`));
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('Open Report… on a checkpoint series file opens the epoch chart; its incomplete checkpoints are named', async () => {
  const dir = path.join(ws, 'series');
  mkdirSync(dir, { recursive: true });
  const a = sampleReport();
  const b = { ...sampleReport(), createdAt: '2025-01-02T12:00:00.000Z' };
  writeFileSync(path.join(dir, 'epoch-1.json'), JSON.stringify(a));
  writeFileSync(path.join(dir, 'epoch-5.json'), JSON.stringify(b));
  const series = {
    format: 'infodiscard-series', version: 1, folder: '/runs/r1', axis: 'epoch', status: 'partial',
    checkpoints: [
      { label: 'epoch-1', epoch: 1, report: 'epoch-1.json', status: 'complete', shards: 2, missingShards: [] },
      { label: 'epoch-5', epoch: 5, report: 'epoch-5.json', status: 'complete', shards: 2, missingShards: [] },
      { label: 'epoch-9', epoch: 9, report: null, status: 'missing', shards: 0, missingShards: [] },
    ],
  };
  const file = path.join(dir, 'series.json');
  writeFileSync(file, JSON.stringify(series));
  mock.messages.length = 0;
  await run('infodiscard.openReport', Uri.file(file));
  const panel = ReportPanel.all().find((p) => (p as unknown as { checkpoints?: { folder: string } }).checkpoints?.folder === '/runs/r1');
  assert.ok(panel, 'a Compare Checkpoints panel');
  assert.deepEqual(panel.sources, [
    { path: path.join(dir, 'epoch-1.json'), label: 'epoch-1', epoch: 1 },
    { path: path.join(dir, 'epoch-5.json'), label: 'epoch-5', epoch: 5 },
  ]);
  assert.match(mock.messages.find((m) => m.level === 'warning')?.message ?? '', /series\.json: 1 of 3 checkpoints are incomplete: epoch-9 \(no shard finished\)/);
});
