/**
 * The model's preprocessing in the editor (issue 13 §1), with the real worker (dist/worker.js) and the mocked VS Code:
 * the first analysis of the third-party 0-255 Keras checkpoint asks in a quick pick (top predictions under each
 * choice), flags [0,1] and recommends 0-255, stores the answer beside the reports and analyses with it; the next
 * analysis asks nothing; "Edit preprocessing…" from the panel asks again; the example families use their manifest's
 * preprocessing whatever the user's input range setting says.
 */
import { makeExtensionContext, mock, Uri, workspace } from './helpers/vscode-mock';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { activate } from '../src/extension/main';
import type { Ctx } from '../src/extension/ctx';
import { ReportPanel } from '../src/extension/panel';
import { exampleChoice, exampleFamilies } from '../src/extension/examples';
import { readSettings } from '../src/extension/config';
import { inputRangeIsSet, parseCustom } from '../src/extension/preprocessing/prompt';
import { planReport, runChoice } from '../src/extension/analyzeCommands';
import { imagesAt } from '../src/extension/inputs';
import type { Report } from '../src/engine/report';
import { tempDir, writeGrayPng } from './helpers/fixtures';

const ROOT = path.resolve(__dirname, '..');
const DATA = path.resolve(ROOT, '../shared/data/keras-mnist-dnn-repair');
const EPOCH20 = path.join(DATA, 'saved-model-20-0.99.hdf5');
const hasData = existsSync(EPOCH20);
const ws = tempDir('infodiscard-ext-prep-');
const reports = path.join(ws, '.infodiscard');
let ctx: Ctx;
let model: string;

const run = (id: string, ...args: unknown[]) => mock.commands.get(id)!(...args) as Promise<void>;
type Item = { label: string; description?: string; detail?: string };

const ZERO = (x: number, y: number) => Math.max(0, 1 - Math.abs(Math.hypot((x - 13.5) / 0.8, y - 13.5) - 8) / 2.5);
const ONE = (x: number, y: number) => (y >= 5 && y < 23 && x >= 12 && x < 16 ? 1 : 0);
const SEVEN = (x: number, y: number) => ((y >= 5 && y < 8 && x >= 7 && x < 21) || (Math.abs(x - (20 - (y - 5) * 0.5)) < 1.6 && y >= 5 && y < 24) ? 1 : 0);

before(() => {
  mock.reset();
  mock.workspaceFolders.push({ uri: Uri.file(ws), name: 'ws', index: 0 });
  mkdirSync(path.join(ws, 'digits'));
  writeGrayPng(path.join(ws, 'digits', 'zero.png'), 28, 28, ZERO);
  writeGrayPng(path.join(ws, 'digits', 'one.png'), 28, 28, ONE);
  writeGrayPng(path.join(ws, 'digits', 'seven.png'), 28, 28, SEVEN);
  if (hasData) {
    mkdirSync(path.join(ws, 'models'));
    model = path.join(ws, 'models', 'saved-model-20-0.99.hdf5');
    copyFileSync(EPOCH20, model);
  }
  ctx = activate(makeExtensionContext(ROOT, path.join(ws, 'storage')) as never);
  mock.config.clear();
  for (const [k, v] of Object.entries({ images: 'digits', backend: 'wasm', maxSteps: 3, minSteps: 3, samplesPerStep: 4, workers: 1, layers: 'all' })) mock.config.set(`infodiscard.${k}`, v);
});

after(async () => {
  ReportPanel.all().forEach((p) => p.dispose());
  await ctx?.dispose();
  rmSync(ws, { recursive: true, force: true });
});

test('Custom… entries: a range or mean/std, optionally BGR; anything else says what to type', () => {
  const r = parseCustom('0,255');
  assert.ok(typeof r !== 'string' && r.preset === '[0,255]' && r.source === 'user');
  const n = parseCustom('103.939,116.779,123.68/1,1,1 bgr');
  assert.ok(typeof n !== 'string' && n.channelOrder === 'bgr' && n.normalize?.mean[0] === 103.939);
  assert.match(String(parseCustom('255,0')), /range lo,hi/);
  assert.match(String(parseCustom('1,2/0')), /std > 0/);
});

test('first analysis of a 0-255 Keras checkpoint: asked, [0,1] flagged, 0-255 recommended, stored, used; not asked again', { skip: !hasData && 'no ../shared data', timeout: 300_000 }, async () => {
  const lists: Item[][] = [];
  mock.answer.quickPick = (list) => {
    lists.push(list as Item[]);
    return (list as Item[]).find((i) => i.label === '[0, 1]');
  };
  mock.answer.message = (message, items) => (/outputs look degenerate/.test(message) ? items.find((i) => /^Use 0–255 \(recommended\)$/.test(String(i))) : undefined);
  await run('infodiscard.analyzeModel', Uri.file(model));

  assert.equal(lists.length, 1, 'one quick pick: the preprocessing');
  const items = lists[0];
  assert.deepEqual(items.map((i) => i.label), ['0–255', '[0, 1]', '[−1, 1]', 'Custom…'], 'the check\'s recommendation first; the 1-channel model gets no per-channel presets');
  assert.equal(items[0].description, 'recommended: at [0, 1] the outputs look degenerate');
  assert.match(items[0].detail ?? '', /^#1 class 1 \(1\.00\), #2 class 7 \(1\.00\), #3 class 0 \(1\.00\)$/, 'top predictions at 0-255 (files in name order: one, seven, zero)');
  assert.match(items[1].description ?? '', /^default/, 'nothing detected: the default next, saying so');
  assert.match(items[1].detail ?? '', /looks wrong: the same output for every image; near-uniform probabilities/);
  const warning = mock.messages.find((m) => m.level === 'warning' && /outputs look degenerate/.test(m.message));
  assert.ok(warning, 'the check warned');
  assert.deepEqual(warning.items, ['Use 0–255 (recommended)', 'Keep', 'Edit…']);

  const stored = readdirSync(path.join(reports, 'preprocessing'));
  assert.equal(stored.length, 1);
  assert.match(stored[0], /^saved-model-20-0\.99-[0-9a-f]{12}\.preprocessing\.json$/);
  const profile = JSON.parse(readFileSync(path.join(reports, 'preprocessing', stored[0]), 'utf8')).profile;
  assert.deepEqual([profile.preset, profile.inputRange, profile.source], ['[0,255]', [0, 255], 'user (recommended by the check)']);
  const reportFile = readdirSync(reports).find((f) => f.endsWith('.json'))!;
  const report = JSON.parse(readFileSync(path.join(reports, reportFile), 'utf8')) as Report;
  assert.deepEqual(report.settings.inputRange, [0, 255], 'analysed at 0-255');
  assert.equal(report.settings.preprocessing?.preset, '[0,255]');

  // Second analysis: the stored profile, no prompt (and the complete report is reused).
  lists.length = 0;
  await run('infodiscard.analyzeModel', Uri.file(model));
  assert.equal(lists.length, 0, 'not asked again');

  // The panel's "Edit preprocessing…" asks again, the stored profile first.
  const panel = mock.panels[mock.panels.length - 1];
  mock.answer.quickPick = (list) => {
    lists.push(list as Item[]);
    return (list as Item[]).find((i) => i.label === '[−1, 1]');
  };
  mock.answer.message = () => undefined;
  panel.receive({ type: 'editPreprocessing', source: path.join(reports, reportFile) });
  for (let i = 0; i < 200 && lists.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  for (let i = 0; i < 200 && !mock.messages.some((m) => /preprocessing of this model is now/.test(m.message)); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(lists.length, 1);
  assert.deepEqual([lists[0][0].label, lists[0][0].description], ['0–255', 'user (recommended by the check)']);
  const after = JSON.parse(readFileSync(path.join(reports, 'preprocessing', stored[0]), 'utf8')).profile;
  assert.equal(after.preset, '[-1,1]', 'kept after the warning was dismissed');
});

test('another checkpoint of the series is planned with the stored profile (Compare, checkpoints, coherency key it so)', { skip: !hasData && 'no ../shared data' }, async () => {
  const sibling = path.join(ws, 'models', 'saved-model-10-0.98.hdf5');
  copyFileSync(path.join(DATA, 'saved-model-10-0.98.hdf5'), sibling);
  const settings = readSettings(undefined);
  const choice = await runChoice(ctx, settings, await imagesAt([path.join(ws, 'digits')], 'digits'), undefined);
  assert.equal(choice.settings.analysis.inputRange, null, 'the workspace default');
  const plan = await planReport(ctx, Uri.file(sibling), choice);
  assert.deepEqual(plan.settings.inputRange, [-1, 1], 'the profile stored for saved-model-20 (edited to [-1,1] above)');
  assert.match(plan.settings.preprocessing?.source ?? '', /\(saved for saved-model-20-0\.99\.hdf5\)$/);
  const other = await planReport(ctx, Uri.file(path.join(ROOT, 'media', 'sample', 'fashion-cnn', 'model.json')), choice);
  assert.equal(other.settings.inputRange, null, 'a model without a stored profile keeps the choice');
});

test('example families use their manifest\'s preprocessing, never the user\'s input range', async () => {
  mock.config.set('infodiscard.inputRange', '0,255');
  const settings = readSettings(undefined);
  assert.deepEqual(settings.analysis.inputRange, [0, 255], 'the user setting is 0-255');
  const families = await exampleFamilies(ctx);
  assert.ok(families.length > 0);
  const choice = await exampleChoice(settings, families[0]);
  assert.equal(choice.settings.analysis.inputRange, null, 'the family\'s [0,1]');
  assert.equal(choice.settings.analysis.normalize, null);
  assert.deepEqual([choice.settings.analysis.preprocessing?.preset, choice.settings.analysis.preprocessing?.source], ['[0,1]', 'manifest']);
  mock.config.delete('infodiscard.inputRange');
});

test('the prompt offers infodiscard.inputRange as the "workspace setting" only when the user set it (VS Code reads an unset one as "0,1")', () => {
  const original = workspace.getConfiguration;
  const inspected = (values: Record<string, unknown>) => () => ({ get: () => '0,1', inspect: () => ({ key: 'infodiscard.inputRange', defaultValue: '0,1', ...values }) });
  try {
    (workspace as { getConfiguration: unknown }).getConfiguration = inspected({});
    assert.equal(inputRangeIsSet(undefined), false, 'only the package.json default');
    (workspace as { getConfiguration: unknown }).getConfiguration = inspected({ workspaceValue: '0,1' });
    assert.equal(inputRangeIsSet(undefined), true, 'set in the workspace (even to the default value)');
    (workspace as { getConfiguration: unknown }).getConfiguration = inspected({ globalValue: '0,255' });
    assert.equal(inputRangeIsSet(undefined), true, 'set in the user settings');
  } finally {
    (workspace as { getConfiguration: unknown }).getConfiguration = original;
  }
});
