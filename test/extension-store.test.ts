/**
 * The report store (file names keyed by model hash and settings, reuse of a complete report, stale detection,
 * lists) and the settings: defaults, validation messages that name the setting.
 */
import { mock, RelativePattern, Uri, workspace } from './helpers/vscode-mock';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { modelSha256, modelSha256FromParts, manifestShardPaths } from '../src/engine/modelHash';
import { DEFAULT_SETTINGS, type SettingsInput } from '../src/engine/settings';
import { writeReport } from '../src/engine/reportFile';
import { readTfjsArtifacts } from '../src/engine/loaders/tfjsArtifacts';
import { parseInputRange, SettingError, settingsFrom } from '../src/extension/config';
import { imagesFromSetting } from '../src/extension/inputs';
import { allReportsFolders, modelName, reportFileName, reportsFolderFor, ReportStore, settingsHash, type ImageFile } from '../src/extension/reportStore';
import { sampleReport } from './fixtures/sample-report';

const ROOT = path.resolve(__dirname, '..');
const SAMPLE_MODEL = path.join(ROOT, 'media', 'sample', 'fashion-cnn');

function tmp(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'infodiscard-store-'));
}

/** A copy of the sample model (model.json + weights.bin) in a temp folder. */
function copyModel(dir: string, name = 'fashion-cnn'): string {
  const to = path.join(dir, name);
  mkdirSync(to, { recursive: true });
  copyFileSync(path.join(SAMPLE_MODEL, 'model.json'), path.join(to, 'model.json'));
  copyFileSync(path.join(SAMPLE_MODEL, 'weights.bin'), path.join(to, 'weights.bin'));
  return path.join(to, 'model.json');
}

const IMAGES: ImageFile[] = [{ path: '/data/a.png', size: 100, mtimeMs: 1 }, { path: '/data/b.png', size: 120, mtimeMs: 2 }];

test('model hash: streamed from disk equals the loader\'s in-memory hash', async () => {
  const dir = tmp();
  try {
    const model = copyModel(dir);
    const json = JSON.parse(readFileSync(model, 'utf8'));
    const shards = manifestShardPaths(json).map((p) => readFileSync(path.join(path.dirname(model), p)));
    assert.deepEqual(manifestShardPaths(json), ['weights.bin']);
    assert.equal(await modelSha256(model), modelSha256FromParts(readFileSync(model), shards));
    assert.equal(await modelSha256(model), readTfjsArtifacts(model, json).sha256, 'what the engine records in reports');
    assert.match(await modelSha256(model), /^[0-9a-f]{64}$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('settings hash: same inputs, same key; any setting, image or layer change, a new key', () => {
  const base = { settings: { ...DEFAULT_SETTINGS }, images: IMAGES };
  const key = settingsHash(base);
  assert.match(key, /^[0-9a-f]{10}$/);
  assert.equal(settingsHash({ settings: { ...DEFAULT_SETTINGS }, images: [...IMAGES].reverse() }), key, 'image order does not matter');
  const changes: Partial<SettingsInput>[] = [{ alpha: 2 }, { tau: 0.02 }, { samples: 8 }, { maxSteps: 100 }, { backend: 'cpu' }, { sigmaGrid: 14 }, { sigmaMax: 2 }, { inputRange: [-1, 1] }];
  for (const c of changes) assert.notEqual(settingsHash({ ...base, settings: { ...DEFAULT_SETTINGS, ...c } }), key, JSON.stringify(c));
  assert.notEqual(settingsHash({ ...base, images: [IMAGES[0]] }), key, 'fewer images');
  assert.notEqual(settingsHash({ ...base, images: [IMAGES[0], { ...IMAGES[1], mtimeMs: 3 }] }), key, 'an image changed');
  assert.notEqual(settingsHash({ ...base, layers: ['conv'] }), key, 'layers');
});

test('report file names: model name + model sha prefix + settings key, safe characters only', () => {
  const sha = 'ab'.repeat(32);
  assert.equal(reportFileName('/w/models/fashion-cnn/model.json', sha, '0123456789'), `fashion-cnn-${'ab'.repeat(6)}-0123456789.json`);
  assert.equal(reportFileName('/w/my net.json', sha, 'k'), `my_net-${'ab'.repeat(6)}-k.json`);
  assert.equal(reportFileName('/w/../<x>/model.json', sha, 'k'), `_x_-${'ab'.repeat(6)}-k.json`);
  assert.equal(modelName('C:\\models\\resnet\\model.json'), 'resnet');
});

test('store: a complete report for the same model hash is reused; partial, other-model or missing ones are not', async () => {
  const dir = tmp();
  try {
    const store = new ReportStore();
    const model = copyModel(dir);
    const sha = await store.modelHash(model);
    assert.ok(sha);
    const file = path.join(dir, '.infodiscard', reportFileName(model, sha, settingsHash({ settings: DEFAULT_SETTINGS, images: IMAGES })));
    assert.equal(await store.findReusable(file, sha), undefined, 'nothing saved yet');
    const report = sampleReport();
    report.model = { ...report.model, path: model, sha256: sha };
    writeReport(file, { ...report, status: 'cancelled' });
    assert.equal(await store.findReusable(file, sha), undefined, 'a cancelled report is recomputed');
    writeReport(file, report);
    assert.equal((await store.findReusable(file, sha))?.status, 'complete');
    assert.equal(await store.findReusable(file, 'f'.repeat(64)), undefined, 'another model version');
    writeFileSync(file, '{ not json');
    assert.equal(await store.findReusable(file, sha), undefined, 'an unreadable file is recomputed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('store: stale when the model or its weights change, missing when gone; hashes cached while files are unchanged', async () => {
  const dir = tmp();
  try {
    let hashed = 0;
    const store = new ReportStore((p) => {
      hashed++;
      return modelSha256(p);
    });
    const model = copyModel(dir);
    const sha = (await store.modelHash(model))!;
    const summary = { modelPath: model, modelSha: sha };
    assert.equal(await store.freshness(summary), 'current');
    assert.equal(await store.freshness(summary), 'current');
    assert.equal(hashed, 1, 'second check used the cache');
    // Same size, new bytes and mtime in the weights: stale.
    const weights = path.join(path.dirname(model), 'weights.bin');
    const bytes = readFileSync(weights);
    bytes[0] ^= 0xff;
    writeFileSync(weights, bytes);
    utimesSync(weights, new Date(), new Date(Date.now() + 5000));
    assert.equal(await store.freshness(summary), 'stale');
    assert.equal(hashed, 2);
    rmSync(weights);
    assert.equal(await store.freshness(summary), 'missing', 'a shard is gone');
    assert.equal(await store.freshness({ modelPath: path.join(dir, 'nope', 'model.json'), modelSha: sha }), 'missing');
    assert.equal(await store.freshness({ modelPath: 'fashion-cnn/model.json', modelSha: 'x' }, dir), 'missing', 'relative paths resolve against baseDir');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('store: lists reports newest first, skips other JSON, re-reads a changed file', async () => {
  const dir = tmp();
  try {
    const folder = path.join(dir, '.infodiscard');
    const a = sampleReport();
    a.createdAt = '2024-01-01T10:00:00.000Z';
    const b = sampleReport({ finishedLayers: 1, status: 'cancelled' });
    b.createdAt = '2024-02-01T10:00:00.000Z';
    writeReport(path.join(folder, 'a.json'), a);
    writeReport(path.join(folder, 'b.json'), b);
    writeFileSync(path.join(folder, 'settings.json'), '{"unrelated": true}');
    writeFileSync(path.join(folder, 'notes.txt'), 'x');
    const store = new ReportStore();
    const list = await store.list([folder, path.join(dir, 'missing-folder')]);
    assert.deepEqual(list.map((s) => path.basename(s.path)), ['b.json', 'a.json']);
    assert.equal(list[0].status, 'cancelled');
    assert.equal(list[0].layers.length, 1);
    assert.equal(list[1].layers.length, 3);
    writeReport(path.join(folder, 'b.json'), { ...b, status: 'complete' });
    utimesSync(path.join(folder, 'b.json'), new Date(), new Date(Date.now() + 5000));
    assert.equal((await store.summary(path.join(folder, 'b.json')))?.status, 'complete');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reports folder: per workspace folder, absolute as given, global storage without a folder', () => {
  mock.reset();
  const storage = Uri.file('/tmp/storage');
  assert.equal(reportsFolderFor('.infodiscard', Uri.file('/elsewhere/model.json'), storage), path.join('/tmp/storage', 'reports'));
  mock.workspaceFolders.push({ uri: Uri.file('/w1'), name: 'w1', index: 0 }, { uri: Uri.file('/w2'), name: 'w2', index: 1 });
  assert.equal(reportsFolderFor('.infodiscard', Uri.file('/w2/models/model.json'), storage), path.join('/w2', '.infodiscard'));
  assert.equal(reportsFolderFor('.infodiscard', Uri.file('/elsewhere/model.json'), storage), path.join('/w1', '.infodiscard'));
  assert.equal(reportsFolderFor('/abs/reports', Uri.file('/w2/model.json'), storage), '/abs/reports');
  assert.deepEqual(allReportsFolders(() => 'out/sid', storage), [path.join('/w1', 'out/sid'), path.join('/w2', 'out/sid')]);
  mock.reset();
  mock.workspaceFolders.length = 0;
});

test('settings: defaults match the engine; 0 grid = per pixel; input range parsed', () => {
  const s = settingsFrom(() => undefined);
  assert.deepEqual(s.analysis, { ...DEFAULT_SETTINGS, inputRange: null });
  assert.equal(s.reportsFolder, '.infodiscard');
  assert.equal(s.workers, 1);
  assert.equal(s.images, '');
  const values: Record<string, unknown> = { sigmaGrid: 14, inputRange: ' -1, 1 ', samplesPerStep: 8, backend: 'cpu', images: ' data/*.png ' };
  const t = settingsFrom((k) => values[k]);
  assert.equal(t.analysis.sigmaGrid, 14);
  assert.deepEqual(t.analysis.inputRange, [-1, 1]);
  assert.equal(t.analysis.samples, 8);
  assert.equal(t.analysis.backend, 'cpu');
  assert.equal(t.images, 'data/*.png');
  assert.deepEqual(parseInputRange('0,255'), [0, 255]);
});

test('settings: validation messages name the setting and the allowed values', () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ alpha: 0 }, 'infodiscard.alpha', /^setting "infodiscard\.alpha" must be a number in \(0, 100\], got 0$/],
    [{ tau: 2 }, 'infodiscard.tau', /"infodiscard\.tau" is a pixel-noise variance and must be in \(0, 1\], got 2/],
    [{ samplesPerStep: 2.5 }, 'infodiscard.samplesPerStep', /"infodiscard\.samplesPerStep" must be a whole number from 1 to 1024, got 2\.5/],
    [{ maxSteps: 0 }, 'infodiscard.maxSteps', /"infodiscard\.maxSteps" must be a whole number from 1 to 100000/],
    [{ sigmaGrid: 1 }, 'infodiscard.sigmaGrid', /"infodiscard\.sigmaGrid" must be 0 \(one sigma per pixel\) or a whole number from 2 to 4096, got 1/],
    [{ sigmaMax: 0.01 }, 'infodiscard.sigmaMax', /"infodiscard\.sigmaMax" must be at least sqrt\(alpha \* tau\) = 0\.122/],
    [{ backend: 'gpu' }, 'infodiscard.backend', /"infodiscard\.backend" must be one of auto, tensorflow, wasm, cpu, got "gpu"/],
    [{ inputRange: '1,0' }, 'infodiscard.inputRange', /"infodiscard\.inputRange" must be two numbers "lo,hi" with lo < hi/],
    [{ inputRange: 'abc' }, 'infodiscard.inputRange', /got "abc"/],
    [{ workers: 0 }, 'infodiscard.workers', /"infodiscard\.workers" must be a whole number from 1 to 8, got 0/],
    [{ alpha: '1.5' }, 'infodiscard.alpha', /"infodiscard\.alpha" must be a number, got "1\.5"/],
    [{ reportsFolder: '  ' }, 'infodiscard.reportsFolder', /must name a folder/],
  ];
  for (const [values, setting, message] of cases) {
    assert.throws(() => settingsFrom((k) => values[k]), (e: unknown) => {
      assert.ok(e instanceof SettingError, `${setting}: a SettingError`);
      assert.equal(e.setting, setting);
      assert.match(e.message, message);
      assert.ok(!e.message.includes('--'), `no CLI option names in "${e.message}"`);
      return true;
    });
  }
});

test('images setting: a folder or file relative to the workspace folder, or a glob searched there', async () => {
  mock.reset();
  const dir = tmp();
  try {
    mkdirSync(path.join(dir, 'data', 'val'), { recursive: true });
    for (const f of ['b.png', 'a.JPG', 'notes.txt']) writeFileSync(path.join(dir, 'data', 'val', f), 'x');
    mock.workspaceFolders.push({ uri: Uri.file(dir), name: 'w', index: 0 });
    const model = Uri.file(path.join(dir, 'm', 'model.json'));
    const folder = await imagesFromSetting('data/val', model as never);
    assert.deepEqual(folder.files.map((f) => path.basename(f.path)), ['a.JPG', 'b.png'], 'image files only, sorted');
    assert.ok(folder.files.every((f) => f.size === 1 && f.mtimeMs > 0), 'size and mtime recorded for the settings key');
    assert.equal((await imagesFromSetting('data/val/b.png', model as never)).files.length, 1);
    let searched: unknown;
    workspace.findFiles = (async (pattern: unknown) => {
      searched = pattern;
      return [Uri.file(path.join(dir, 'data', 'val', 'b.png')), Uri.file(path.join(dir, 'data', 'val', 'notes.txt'))];
    }) as typeof workspace.findFiles;
    const glob = await imagesFromSetting('data/**/*.png', model as never);
    assert.deepEqual(glob.files.map((f) => path.basename(f.path)), ['b.png']);
    assert.equal((searched as RelativePattern).pattern, 'data/**/*.png');
    assert.equal((searched as RelativePattern).baseUri.fsPath, dir, 'searched in the model\'s workspace folder');
    await assert.rejects(imagesFromSetting('nope', model as never), /setting "infodiscard\.images" names "nope", which does not exist/);
    workspace.findFiles = async () => [];
    await assert.rejects(imagesFromSetting('*.gif', model as never), /"infodiscard\.images" \("\*\.gif"\) matches no \.png, \.jpg or \.jpeg files/);
  } finally {
    mock.reset();
    mock.workspaceFolders.length = 0;
    rmSync(dir, { recursive: true, force: true });
  }
});
