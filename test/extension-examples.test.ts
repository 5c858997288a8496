/**
 * The shipped example families (media/families) as ready-made comparisons, with the real worker and the mocked
 * VS Code: the Compare picker lists them, "Compare an Example Model Family…" analyses every model of one at the
 * family's layers on its images, charts them in one panel labelled by model name, and reuses the reports next time.
 */
import { makeExtensionContext, mock, Uri } from './helpers/vscode-mock';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { activate } from '../src/extension/main';
import type { Ctx } from '../src/extension/ctx';
import { ReportPanel } from '../src/extension/panel';
import { familyInputs, parseManifest } from '../src/engine/families';
import type { ToWebview } from '../src/protocol';
import { tempDir } from './helpers/fixtures';

const ROOT = path.resolve(__dirname, '..');
const FAMILIES = path.join(ROOT, 'media', 'families');
const manifest = parseManifest(JSON.parse(readFileSync(path.join(FAMILIES, 'manifest.json'), 'utf8')));
const ws = tempDir('infodiscard-ext-examples-');
let ctx: Ctx;

const run = (id: string, ...args: unknown[]) => mock.commands.get(id)!(...args) as Promise<void>;
type Item = { label: string; description?: string; detail?: string; kind?: number };

before(() => {
  mock.reset();
  mock.workspaceFolders.push({ uri: Uri.file(ws), name: 'ws', index: 0 });
  ctx = activate(makeExtensionContext(ROOT, path.join(ws, 'storage')) as never);
  mock.config.clear();
  for (const [k, v] of Object.entries({ backend: 'wasm', maxSteps: 10, samplesPerStep: 4, workers: 1 })) mock.config.set(`infodiscard.${k}`, v);
});

after(async () => {
  ReportPanel.all().forEach((p) => p.dispose());
  await ctx?.dispose();
  rmSync(ws, { recursive: true, force: true });
});

test('familyInputs: paths resolve against the manifest folder; a family\'s own values win', () => {
  const depth = manifest.families.find((f) => f.id === 'depth-plain')!;
  const inputs = familyInputs(depth, manifest, FAMILIES);
  assert.equal(inputs.images, path.join(FAMILIES, 'images'));
  assert.equal(inputs.boxes, path.join(FAMILIES, 'images', 'boxes.json'));
  assert.equal(inputs.trainImages, path.join(ROOT, 'media', 'sample', 'train'));
  assert.deepEqual(inputs.models.map((m) => path.relative(FAMILIES, m.file)), depth.models.map((m) => m.file));
  const own = familyInputs({ ...depth, images: '/data/imgs', boxes: 'b.json' }, null, '/m');
  assert.deepEqual([own.images, own.boxes, own.trainImages], ['/data/imgs', '/m/b.json', undefined]);
  assert.equal(familyInputs(depth, null, '/m').boxes, '/m/images/boxes.json', 'boxes.json beside the images by default');
});

test('the Compare picker lists every family under its own heading; a family with other picks is refused', async () => {
  let items: Item[] = [];
  mock.answer.quickPick = (list) => {
    items = list as Item[];
    const model = items.find((i) => i.description?.includes('models:') === false && i.label !== '' && !i.kind);
    return [items.find((i) => i.label.includes(manifest.families[0].title)), model].filter(Boolean);
  };
  await run('infodiscard.compareModels');
  const heading = items.findIndex((i) => /Example model families/.test(i.label));
  assert.ok(heading >= 0, 'a separator for the examples');
  const listed = items.slice(heading + 1).filter((i) => i.label.startsWith('$(beaker)'));
  // Each family, then (where every model has its other training seeds beside it) the same family across its runs.
  const seeds = new Set(manifest.families.flatMap((f) => f.models.flatMap((m) => [m.seed ?? 1, ...(m.runs ?? []).map((r) => r.seed)])));
  const across = (f: (typeof manifest.families)[number]) => f.models.every((m) => (m.runs ?? []).length === seeds.size - 1);
  assert.deepEqual(listed.map((i) => i.label), manifest.families.flatMap((f) => [`$(beaker) ${f.title}`, ...(across(f) ? [`$(beaker) ${f.title}, across ${seeds.size} training runs`] : [])]));
  assert.ok(seeds.size >= 3 && manifest.families.every(across), 'the bundled families have 3 training runs each');
  assert.match(listed[0].detail ?? '', /^Paper: /);
  assert.match(listed[0].description ?? '', new RegExp(`^${manifest.families[0].models.length} models: `));
  // Only the family and Browse… exist in this empty workspace, so the second pick is Browse…: still refused.
  assert.ok(mock.messages.some((m) => m.level === 'warning' && /compared on its own/.test(m.message)));
  assert.equal(mock.panels.length, 0);
});

test('Compare an Example Model Family…: every model at the family\'s layers on its 8 images, one panel, reused next time', { timeout: 300_000 }, async () => {
  const family = manifest.families.find((f) => f.id === 'depth-plain')!;
  mock.answer.quickPick = (list) => (list as Item[]).find((i) => i.label === `$(beaker) ${family.title}`);
  await run('infodiscard.compareExample');
  assert.deepEqual(mock.messages.filter((m) => m.level === 'error'), []);
  const names = family.models.map((m) => m.name);
  assert.deepEqual(mock.progress.map((p) => p.options.title), names.map((n) => `SID of ${n}`));
  const panel = mock.panels[mock.panels.length - 1];
  panel.receive({ type: 'ready' });
  await new Promise((r) => setTimeout(r, 20));
  const compare = (panel.webview.posted as ToWebview[]).filter((m) => m.type === 'compare').pop() as Extract<ToWebview, { type: 'compare' }>;
  assert.deepEqual(compare.series.map((s) => s.label), names);
  for (const s of compare.series) {
    assert.equal(s.report.status, 'complete');
    assert.deepEqual(s.report.layers.map((l) => l.name), family.layers, 'the family\'s layers, in order');
    assert.equal(s.report.images.length, 8);
    assert.ok(s.report.layers.every((l) => Number.isFinite(l.sid.mean)));
  }
  // Reports go to global storage (the models are not in the workspace), keyed with the layers: the second run reuses them.
  const before = mock.progress.length;
  await run('infodiscard.compareExample');
  assert.equal(mock.progress.length, before, 'no analysis ran');
  assert.equal(mock.log.filter((l) => /model and settings unchanged, reusing/.test(l)).length, names.length);
});
