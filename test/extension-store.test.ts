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
import { DEFAULT_DECODER, DEFAULT_SETTINGS, LIGHT_DECODER, type SettingsInput } from '../src/engine/settings';
import type { MetricName, Report } from '../src/engine/report';
import { writeReport } from '../src/engine/reportFile';
import { coreCount } from '../src/worker/client';
import { readTfjsArtifacts } from '../src/engine/loaders/tfjsArtifacts';
import { parseInputRange, SettingError, settingsFrom } from '../src/extension/config';
import { boxesFileFor, imagesFromSetting, sampleImagesFolder, skippedImagesNote, trainImagesFor } from '../src/extension/inputs';
import type { Ctx } from '../src/extension/ctx';
import {
  allReportsFolders, coversMetrics, metricKeys, modelName, reportFileName, reportsFolderFor, ReportStore, settingsHash, summarize, type ImageFile, type RunInputs,
} from '../src/extension/reportStore';
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

/** The first bytes of a PNG and a JPEG: enough for the image folders' listing (which reads them), not to decode. */
const FAKE_IMAGE: Record<string, Buffer> = {
  '.png': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  '.jpg': Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
};

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

test('settings hash: same inputs, same key; any setting or image change, a new key; the layers are not in it (resume)', () => {
  const base = { settings: { ...DEFAULT_SETTINGS }, images: IMAGES };
  const key = settingsHash(base);
  assert.match(key, /^[0-9a-f]{10}$/);
  assert.equal(settingsHash({ settings: { ...DEFAULT_SETTINGS }, images: [...IMAGES].reverse() }), key, 'image order does not matter');
  const changes: Partial<SettingsInput>[] = [{ alpha: 2 }, { tau: 0.02 }, { samples: 8 }, { maxSteps: 100 }, { backend: 'cpu' }, { sigmaGrid: 14 }, { sigmaMax: 2 }, { inputRange: [-1, 1] },
    { preview: true }, { warmStart: true }, { minSteps: 200 }];
  for (const c of changes) assert.notEqual(settingsHash({ ...base, settings: { ...DEFAULT_SETTINGS, ...c } }), key, JSON.stringify(c));
  assert.notEqual(settingsHash({ ...base, images: [IMAGES[0]] }), key, 'fewer images');
  assert.notEqual(settingsHash({ ...base, images: [IMAGES[0], { ...IMAGES[1], mtimeMs: 3 }] }), key, 'an image changed');
  // One file gathers a model's layers across runs: a run over other layers resumes from it (docs/layers.md).
  assert.equal(settingsHash({ ...base, layers: ['conv'] }), key, 'layers');
  assert.equal(settingsHash({ ...base, imageOptions: {} }), key, 'unset resize/transparency: the key stays as it was');
  const crop = settingsHash({ ...base, imageOptions: { resize: 'center-crop' } });
  assert.notEqual(crop, key, 'a resize mode');
  assert.notEqual(settingsHash({ ...base, imageOptions: { resize: 'letterbox' } }), crop, 'another resize mode');
  assert.notEqual(settingsHash({ ...base, imageOptions: { alpha: { mode: 'drop' } } }), key, 'alpha handling');
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
  assert.equal(s.workers, Math.min(8, coreCount()), '0 = one worker per core');
  assert.equal(s.images, '');
  const values: Record<string, unknown> = { sigmaGrid: 14, inputRange: ' -1, 1 ', samplesPerStep: 8, backend: 'cpu', images: ' data/*.png ' };
  const t = settingsFrom((k) => values[k]);
  assert.equal(t.analysis.sigmaGrid, 14);
  assert.deepEqual([settingsFrom((k) => (k === 'search' ? 'warmStart' : undefined)).analysis].map((a) => [a.preview, a.warmStart]), [[false, true]]);
  assert.deepEqual([settingsFrom((k) => (k === 'search' ? 'preview' : undefined)).analysis].map((a) => [a.preview, a.warmStart]), [[true, false]]);
  assert.deepEqual(t.analysis.inputRange, [-1, 1]);
  assert.equal(t.analysis.samples, 8);
  assert.equal(t.analysis.backend, 'cpu');
  assert.equal(t.images, 'data/*.png');
  assert.deepEqual(parseInputRange('0,255'), [0, 255]);
  assert.deepEqual([s.trainImages, s.boxesFile], ['', '']);
  assert.equal(s.splitSamples, 'auto');
  assert.equal(settingsFrom((k) => (k === 'splitSamples' ? 'never' : undefined)).splitSamples, 'never');
  assert.throws(() => settingsFrom((k) => (k === 'splitSamples' ? 'sometimes' : undefined)), (e: unknown) => e instanceof SettingError && /infodiscard\.splitSamples.*must be one of auto, always, never, got "sometimes"/.test((e as Error).message));
  assert.equal(s.native, 'auto');
  assert.equal(settingsFrom((k) => (k === 'native' ? 'off' : undefined)).native, 'off');
  assert.throws(() => settingsFrom((k) => (k === 'native' ? 'gpu' : undefined)), (e: unknown) => e instanceof SettingError && /infodiscard\.native.*must be one of auto, off, got "gpu"/.test((e as Error).message));
  assert.deepEqual(s.imageOptions, {}, 'resize and transparency unset: the engine\'s defaults');
  assert.deepEqual(settingsFrom((k) => ({ resize: ' center-crop ', transparency: 'drop' })[k]).imageOptions, { resize: 'center-crop', alpha: { mode: 'drop' } });
  assert.deepEqual(settingsFrom((k) => ({ resize: 'letterbox:255,0,51', transparency: 'composite:255,255,255' })[k]).imageOptions, {
    resize: 'letterbox',
    pad: [1, 0, 0.2],
    alpha: { mode: 'composite', background: [1, 1, 1] },
  });
  assert.deepEqual(s.analysis.metrics, ['sid'], 'SID alone by default');
  assert.equal(s.analysis.decoder, null, 'no decoder without RU');
});

test('settings: metrics in the engine\'s order with SID first; decoder preset only with RU', () => {
  const from = (values: Record<string, unknown>) => settingsFrom((k) => values[k]);
  assert.deepEqual(from({ metrics: [] }).analysis.metrics, ['sid']);
  const all = from({ metrics: ['baselines', 'ru', 'concentration', 'ru'] }).analysis;
  assert.deepEqual(all.metrics, ['sid', 'ru', 'concentration', 'baselines'], 'ordered, each once');
  assert.deepEqual(all.decoder, DEFAULT_DECODER, 'the paper\'s decoder by default');
  assert.deepEqual(from({ metrics: ['ru'], decoder: 'light' }).analysis.decoder, LIGHT_DECODER);
  assert.deepEqual(from({ metrics: ['sid', 'concentration'] }).analysis.metrics, ['sid', 'concentration'], '"sid" may be listed');
  assert.equal(from({ metrics: ['concentration'], decoder: 'light' }).analysis.decoder, null, 'the decoder only matters to RU');
  const t = from({ trainImages: ' data/train ', boxesFile: ' data/boxes.json ' });
  assert.deepEqual([t.trainImages, t.boxesFile], ['data/train', 'data/boxes.json']);
});

test('settings: validation messages name the setting and the allowed values', () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ alpha: 0 }, 'infodiscard.alpha', /^setting "infodiscard\.alpha" must be a number in \(0, 100\], got 0$/],
    [{ tau: 2 }, 'infodiscard.tau', /"infodiscard\.tau" is a pixel-noise variance and must be in \(0, 1\], got 2/],
    [{ samplesPerStep: 2.5 }, 'infodiscard.samplesPerStep', /"infodiscard\.samplesPerStep" must be a whole number from 1 to 1024, got 2\.5/],
    [{ maxSteps: 0 }, 'infodiscard.maxSteps', /"infodiscard\.maxSteps" must be a whole number from 1 to 100000/],
    [{ sigmaGrid: 1 }, 'infodiscard.sigmaGrid', /"infodiscard\.sigmaGrid" must be 0 \(one sigma per pixel\) or a whole number from 2 to 4096, got 1/],
    [{ sigmaMax: 0.01 }, 'infodiscard.sigmaMax', /"infodiscard\.sigmaMax" must be at least sqrt\(alpha \* tau\) = 0\.122/],
    [{ backend: 'gpu' }, 'infodiscard.backend', /"infodiscard\.backend" must be one of auto, tensorflow, webgpu, wasm, cpu, got "gpu"/],
    [{ inputRange: '1,0' }, 'infodiscard.inputRange', /"infodiscard\.inputRange" must be two numbers "lo,hi" with lo < hi/],
    [{ inputRange: 'abc' }, 'infodiscard.inputRange', /got "abc"/],
    [{ search: 'fast' }, 'infodiscard.search', /"infodiscard\.search" must be one of optimised, warmStart, preview, got "fast"/],
    [{ workers: -1 }, 'infodiscard.workers', /"infodiscard\.workers" must be 0 \(one per CPU core\) or a whole number up to 8, got -1/],
    [{ alpha: '1.5' }, 'infodiscard.alpha', /"infodiscard\.alpha" must be a number, got "1\.5"/],
    [{ reportsFolder: '  ' }, 'infodiscard.reportsFolder', /must name a folder/],
    [{ metrics: ['ru', 'saliency'] }, 'infodiscard.metrics', /^setting "infodiscard\.metrics" lists unknown metric "saliency"; choose from ru, concentration, baselines \(SID always runs\)$/],
    [{ metrics: 'ru' }, 'infodiscard.metrics', /"infodiscard\.metrics" must be a list of "ru", "concentration", "baselines", got "ru"/],
    [{ metrics: [3] }, 'infodiscard.metrics', /lists unknown metric 3/],
    [{ decoder: 'heavy' }, 'infodiscard.decoder', /^setting "infodiscard\.decoder" must be one of default, light, got "heavy"$/],
    [{ metrics: ['ru'], decoder: 6 }, 'infodiscard.decoder', /must be one of default, light, got 6/],
    [{ trainImages: ['a'] }, 'infodiscard.trainImages', /"infodiscard\.trainImages" must be a folder or glob pattern \(text\)/],
    [{ boxesFile: 1 }, 'infodiscard.boxesFile', /"infodiscard\.boxesFile" must be the path of a JSON file \(text\), got 1/],
    [{ resize: 'crop' }, 'infodiscard.resize', /^setting "infodiscard\.resize" expects stretch, center-crop or letterbox\[:r,g,b\], got "crop"$/],
    [{ resize: 'letterbox:300,0,0' }, 'infodiscard.resize', /colour must be r,g,b, three whole numbers from 0 to 255, got "300,0,0"/],
    [{ transparency: 'white' }, 'infodiscard.transparency', /^setting "infodiscard\.transparency" expects composite\[:r,g,b\] .* or drop, got "white"$/],
    [{ transparency: 3 }, 'infodiscard.transparency', /must be composite\[:r,g,b\] or drop \(text\), got 3/],
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
    // Image files are known by their first bytes too: a PNG and a JPEG signature (8 and 4 bytes), a broken WebP and
    // a HEIC are named as skipped, a text file is not an image at all.
    for (const f of ['b.png', 'a.JPG', 'notes.txt', 'broken.webp', 'IMG_1.heic']) writeFileSync(path.join(dir, 'data', 'val', f), FAKE_IMAGE[path.extname(f).toLowerCase()] ?? 'x');
    mock.workspaceFolders.push({ uri: Uri.file(dir), name: 'w', index: 0 });
    const model = Uri.file(path.join(dir, 'm', 'model.json'));
    const folder = await imagesFromSetting('data/val', model as never);
    assert.deepEqual(folder.files.map((f) => path.basename(f.path)), ['a.JPG', 'b.png'], 'image files only, sorted');
    assert.deepEqual(folder.files.map((f) => f.size), [4, 8], 'size recorded for the settings key');
    assert.ok(folder.files.every((f) => f.mtimeMs > 0), 'mtime recorded for the settings key');
    assert.deepEqual(folder.skipped?.map((f) => path.basename(f.path)), ['IMG_1.heic', 'broken.webp']);
    assert.match(skippedImagesNote(folder)!, /^skipped 2 files that cannot be read as images: .*IMG_1\.heic \(HEIC is not read\), .*broken\.webp/);
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
    await assert.rejects(imagesFromSetting('*.heic', model as never), /"infodiscard\.images" \("\*\.heic"\) matches no image files \(\.png \.jpg \.jpeg \.bmp \.gif \.tif \.tiff \.webp\)/);
  } finally {
    mock.reset();
    mock.workspaceFolders.length = 0;
    rmSync(dir, { recursive: true, force: true });
  }
});

const settingsWith = (metrics: MetricName[], over: Partial<SettingsInput> = {}): SettingsInput => ({
  ...DEFAULT_SETTINGS,
  metrics: ['sid', ...metrics],
  decoder: metrics.includes('ru') ? DEFAULT_DECODER : null,
  ...over,
});

test('metric keys: the settings hash ignores metrics; each metric\'s tag follows its own inputs', () => {
  const base: RunInputs = { settings: settingsWith([]), images: IMAGES };
  const key = settingsHash(base);
  const ru: RunInputs = { ...base, settings: settingsWith(['ru', 'concentration', 'baselines']), trainImages: [IMAGES[0]], boxesFile: { path: '/data/boxes.json', size: 10, mtimeMs: 5 } };
  assert.equal(settingsHash(ru), key, 'same SID settings and images, same settings hash');
  assert.deepEqual(metricKeys(base), {}, 'SID alone: no tags');
  const k = metricKeys(ru);
  assert.deepEqual(Object.keys(k), ['ru', 'concentration', 'baselines']);
  for (const v of Object.values(k)) assert.match(v!, /^[0-9a-f]{6}$/);
  const changed: [string, RunInputs, MetricName][] = [
    ['light decoder', { ...ru, settings: { ...ru.settings, decoder: LIGHT_DECODER } }, 'ru'],
    ['other training images', { ...ru, trainImages: [IMAGES[1]] }, 'ru'],
    ['no training images', { ...ru, trainImages: undefined }, 'ru'],
    ['boxes edited', { ...ru, boxesFile: { path: '/data/boxes.json', size: 11, mtimeMs: 6 } }, 'concentration'],
    ['no boxes', { ...ru, boxesFile: undefined }, 'concentration'],
    ['a class to explain', { ...ru, targetClass: 3 }, 'baselines'],
  ];
  for (const [what, inputs, metric] of changed) {
    const other = metricKeys(inputs);
    assert.notEqual(other[metric], k[metric], what);
    for (const m of Object.keys(k) as MetricName[]) if (m !== metric) assert.equal(other[m], k[m], `${what} leaves ${m} alone`);
  }
  assert.equal(metricKeys({ ...ru, trainImages: [IMAGES[0]] }).ru, k.ru, 'stable');
  const sha = 'ab'.repeat(32);
  assert.equal(reportFileName('/w/net/model.json', sha, '0123456789', {}), `net-${'ab'.repeat(6)}-0123456789.json`, 'SID-only names as before');
  assert.equal(reportFileName('/w/net/model.json', sha, '0123456789', { baselines: 'cccccc', ru: 'aaaaaa' }), `net-${'ab'.repeat(6)}-0123456789-ruaaaaaa-basecccccc.json`);
  assert.ok(coversMetrics({ ru: 'a', concentration: 'b' }, { ru: 'a' }));
  assert.ok(!coversMetrics({ ru: 'a' }, { ru: 'a', concentration: 'b' }));
  assert.ok(!coversMetrics({ ru: 'x', concentration: 'b' }, { ru: 'a' }), 'another decoder is not the same RU');
});

test('store: a report that measured more metrics with the same settings is reused; one with fewer is not', async () => {
  const dir = tmp();
  try {
    const store = new ReportStore();
    const model = copyModel(dir);
    const sha = (await store.modelHash(model))!;
    const folder = path.join(dir, '.infodiscard');
    const boxes = { path: '/data/boxes.json', size: 10, mtimeMs: 5 };
    const run = (metrics: MetricName[], over: Partial<RunInputs> = {}): RunInputs => ({ settings: settingsWith(metrics), images: IMAGES, boxesFile: boxes, ...over });
    const save = (inputs: RunInputs, status: Report['status'] = 'complete'): string => {
      const file = path.join(folder, reportFileName(model, sha, settingsHash(inputs), metricKeys(inputs)));
      const r = sampleReport();
      r.model = { ...r.model, path: model, sha256: sha };
      r.settings = { ...r.settings, metrics: inputs.settings.metrics, decoder: inputs.settings.decoder };
      writeReport(file, { ...r, status });
      return file;
    };
    const find = (inputs: RunInputs) => store.findReusableRun(folder, model, sha, settingsHash(inputs), metricKeys(inputs)).then((f) => f && path.basename(f.path));

    assert.equal(await find(run([])), undefined, 'no folder yet');
    const ruOnly = save(run(['ru']));
    assert.equal(await find(run(['ru'])), path.basename(ruOnly), 'its own file');
    assert.equal(await find(run([])), path.basename(ruOnly), 'SID alone: the RU report measured SID too');
    assert.equal(await find(run(['ru', 'concentration'])), undefined, 'fewer metrics than asked: recomputed');
    assert.equal(await find(run(['ru'], { settings: settingsWith(['ru'], { decoder: LIGHT_DECODER }) })), undefined, 'another decoder');
    assert.equal(await find(run(['ru'], { settings: settingsWith(['ru'], { alpha: 2 }) })), undefined, 'another SID setting');

    const all = save(run(['ru', 'concentration', 'baselines']));
    utimesSync(all, new Date(), new Date(Date.now() + 5000));
    assert.equal(await find(run(['ru', 'concentration'])), path.basename(all), 'a superset answers');
    assert.equal(await find(run(['concentration'])), path.basename(all));
    assert.equal(await find(run(['ru'])), path.basename(ruOnly), 'the exact file first');
    assert.equal(await find(run([])), path.basename(all), 'else the newest superset');
    assert.equal(await find(run(['concentration'], { boxesFile: { ...boxes, size: 12 } })), undefined, 'the boxes changed');

    // A superset that is not complete, or whose JSON does not say it measured the metric, does not answer.
    const partial = save(run(['concentration', 'baselines']), 'cancelled');
    assert.equal(await find(run(['baselines'])), path.basename(all));
    rmSync(all);
    assert.equal(await find(run(['baselines'])), undefined, 'the cancelled superset is not reused');
    assert.ok(partial);
    const liar = save(run(['baselines']));
    const r = JSON.parse(readFileSync(liar, 'utf8'));
    r.settings.metrics = ['sid'];
    writeFileSync(liar, JSON.stringify(r));
    assert.equal(await find(run(['baselines'])), undefined, 'the report itself must list the metric');
    assert.equal(await find(run([])), path.basename(liar), 'but it answers SID');
    // Other models' reports and stray files are never candidates.
    writeFileSync(path.join(folder, `${path.basename(ruOnly, '.json')}-zz123456.json`), '{}');
    assert.equal(await find(run(['ru'])), path.basename(ruOnly));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('report summaries carry RU (with decoder PSNR), concentration and gradient magnitude when present', () => {
  const r = sampleReport();
  const decoder = { key: 'k', psnr: 18.25, trainLoss: 0.01, heldOutLoss: 0.012, epochs: 12, trainImages: 200, heldOutImages: 46, cached: false, seconds: 30 };
  r.layers[0] = { ...r.layers[0], ru: { mean: 1.5, total: 1000, std: 0.25, decoder }, concentration: { mean: 0.12, std: 0.01, images: 2 }, baselines: { gradNorm: { mean: 0.00123, std: 0.0001 }, gradCam: null, cam: null } };
  r.layers[1] = { ...r.layers[1], concentration: null };
  const s = summarize(r, '/r.json', 1);
  assert.deepEqual(s.layers[0].ru, { mean: 1.5, std: 0.25, psnr: 18.25 });
  assert.deepEqual(s.layers[0].concentration, { mean: 0.12, std: 0.01, images: 2 });
  assert.equal(s.layers[0].gradNorm, 0.00123);
  assert.equal(s.layers[1].concentration, null);
  assert.deepEqual(Object.keys(s.layers[2]).sort(), ['kind', 'mean', 'name', 'std'], 'a schema-1 layer: SID only');
});

test('training images: the setting, else the shipped training images for the sample images, else none', async () => {
  mock.reset();
  const dir = tmp();
  try {
    const ctx = { extensionUri: Uri.file(ROOT) } as unknown as Ctx;
    mkdirSync(path.join(dir, 'train'));
    for (const f of ['t1.png', 't2.png', 'readme.md']) writeFileSync(path.join(dir, 'train', f), FAKE_IMAGE[path.extname(f)] ?? 'x');
    mock.workspaceFolders.push({ uri: Uri.file(dir), name: 'w', index: 0 });
    const model = Uri.file(path.join(dir, 'model.json')) as never;
    const sample = { files: [{ path: path.join(sampleImagesFolder(ctx), '0-tshirt.png'), size: 1, mtimeMs: 1 }], label: 'sample images' };
    const own = { files: [{ path: path.join(dir, 'images', 'a.png'), size: 1, mtimeMs: 1 }], label: 'images' };
    const set = await trainImagesFor(ctx, 'train', model, own);
    assert.deepEqual(set?.map((f) => f.path), [path.join(dir, 'train', 't1.png'), path.join(dir, 'train', 't2.png')], 'absolute, images only');
    const shipped = await trainImagesFor(ctx, '', model, sample);
    assert.equal(shipped?.length, 240, 'the 240 Fashion-MNIST training images');
    assert.ok(shipped!.every((f) => f.path.startsWith(path.join(ROOT, 'media', 'sample', 'train') + path.sep)));
    assert.equal(await trainImagesFor(ctx, '', model, own), undefined, 'own images: the decoders train on them alone');
    await assert.rejects(trainImagesFor(ctx, 'nope', model, own), (e: unknown) => {
      assert.ok(e instanceof SettingError);
      assert.equal(e.setting, 'infodiscard.trainImages');
      assert.match(e.message, /^setting "infodiscard\.trainImages" names "nope", which does not exist/);
      return true;
    });
  } finally {
    mock.reset();
    mock.workspaceFolders.length = 0;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('boxes file: the setting (which must exist), else boxes.json in the images\' folder if present', async () => {
  mock.reset();
  const dir = tmp();
  try {
    mkdirSync(path.join(dir, 'data', 'val', 'cats'), { recursive: true });
    mock.workspaceFolders.push({ uri: Uri.file(dir), name: 'w', index: 0 });
    const model = Uri.file(path.join(dir, 'model.json')) as never;
    const img = (p: string) => ({ path: path.join(dir, p), size: 1, mtimeMs: 1 });
    const images = { files: [img('data/val/a.png'), img('data/val/cats/b.png')], label: 'data/val' };
    assert.equal(await boxesFileFor('', model, images), undefined, 'nothing there');
    writeFileSync(path.join(dir, 'data', 'val', 'boxes.json'), '{}');
    const found = await boxesFileFor('', model, images);
    assert.equal(found?.path, path.join(dir, 'data', 'val', 'boxes.json'), 'in the images\' common folder');
    assert.equal(found?.size, 2);
    writeFileSync(path.join(dir, 'regions.json'), '{"a.png": {"bbox": [0, 0, 1, 1]}}');
    assert.equal((await boxesFileFor('regions.json', model, images))?.path, path.join(dir, 'regions.json'), 'workspace-relative');
    await assert.rejects(boxesFileFor('missing.json', model, images), (e: unknown) => {
      assert.ok(e instanceof SettingError);
      assert.equal(e.setting, 'infodiscard.boxesFile');
      assert.match(e.message, /^setting "infodiscard\.boxesFile" names "missing\.json", which is not a file/);
      return true;
    });
  } finally {
    mock.reset();
    mock.workspaceFolders.length = 0;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('store: single-file models (.onnx, .h5, .keras) hash from their bytes; a changed file is stale', async () => {
  const dir = tmp();
  try {
    const store = new ReportStore();
    const onnx = path.join(dir, 'tiny_resnet.onnx');
    copyFileSync(path.resolve('test/fixtures/onnx/tiny_resnet.onnx'), onnx);
    const sha = await store.modelHash(onnx);
    assert.equal(sha, await modelSha256(onnx), 'the same hash as the engine');
    assert.equal(await store.freshness({ modelPath: onnx, modelSha: sha! }), 'current');
    const h5 = path.join(dir, 'net.h5');
    writeFileSync(h5, Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]));
    const before = await store.modelHash(h5);
    assert.ok(before, 'a binary file is not parsed as JSON');
    writeFileSync(h5, Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, 4, 5, 6, 7]));
    assert.equal(await store.freshness({ modelPath: h5, modelSha: before! }), 'stale');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
