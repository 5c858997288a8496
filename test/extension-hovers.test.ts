/**
 * Hovers: which positions name a layer (whole string literals only), the Markdown (escaped untrusted text, one
 * trusted command), several reports, and the lazy index (nothing read before the first hover over a string,
 * kept current by the watcher and the extension's own writes).
 */
import { makeDocument, mock, MarkdownString, Position, Uri, CancellationTokenSource } from './helpers/vscode-mock';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Report } from '../src/engine/report';
import { writeReport } from '../src/engine/reportFile';
import { layerNameAt, literalAt, modelsMentioned } from '../src/extension/hoverMatch';
import { LayerHoverProvider, LayerIndex, layerHoverMarkdown, orderForDocument, SHOW_LAYER_COMMAND, type IndexEntry } from '../src/extension/hovers';
import { ReportStore } from '../src/extension/reportStore';
import { EVIL_LAYER_NAME, sampleReport } from './fixtures/sample-report';

const known = new Set(['block2_conv', 'conv2d_3', 'dense', 'seq/conv/Relu']);
const isLayer = (n: string): boolean => known.has(n);
/** The layer named under the first "|" in `line` (the marker is removed). */
function at(line: string, syntax: 'python' | 'js' = 'python'): string | undefined {
  const ch = line.indexOf('|');
  return layerNameAt(line.replace('|', ''), ch, isLayer, syntax)?.text;
}

test('layer names: whole string literals in Python and TS/JS', () => {
  assert.equal(at('x = layers.Conv2D(32, 3, name="block2_|conv")(x)'), 'block2_conv');
  assert.equal(at('x = layers.Conv2D(32, 3, name=|"block2_conv")(x)'), 'block2_conv', 'on the opening quote');
  assert.equal(at("h = model.get_layer('conv2d|_3').output"), 'conv2d_3');
  assert.equal(at("h = model.get_layer(r'conv2d|_3')"), 'conv2d_3', 'prefixed Python string');
  assert.equal(at('const h = model.getLayer(`conv2d_|3`);', 'js'), 'conv2d_3');
  assert.equal(at("const probe = 'seq/conv/R|elu';", 'js'), 'seq/conv/Relu', 'graph-model node names with slashes');
  assert.equal(at('print("a", "con|v2d_3", "b")'), 'conv2d_3', 'the literal under the cursor, not the first one');
  assert.equal(at('s = "it\\"s", "den|se"'), 'dense', 'escaped quotes do not confuse the scan');
});

test('layer names: not in unrelated words, partial literals, identifiers or comments', () => {
  assert.equal(at('name = "my_conv2d_|3x"'), undefined, 'a longer literal containing the name');
  assert.equal(at('name = "conv2d_3 |and more"'), undefined);
  assert.equal(at('conv2d_|3 = layers.Dense(10)'), undefined, 'an identifier, not a literal');
  assert.equal(at('x = dense|(x)'), undefined);
  assert.equal(at('x = 1  # see "conv2d|_3"'), undefined, 'Python comment');
  assert.equal(at('let x = 1; // "conv2d|_3"', 'js'), undefined, 'JS comment');
  assert.equal(at('x = "conv2d_3" + |y'), undefined, 'outside the literal');
  assert.equal(at('x = "conv2d|_3'), undefined, 'unterminated literal');
  assert.equal(literalAt('a = "x" # "y"', 10, 'python'), undefined);
  assert.deepEqual(literalAt("get_layer('a\\'b')", 12, 'python'), { start: 10, end: 16, text: "a'b" });
});

function entry(over: Partial<IndexEntry> = {}): IndexEntry {
  return { reportPath: '/w/.infodiscard/a.json', model: 'fashion-cnn', modelPath: '/w/fashion-cnn/model.json', createdAt: '2024-03-01T12:30:00.000Z', status: 'complete', kind: 'Conv2D', mean: -0.597, std: 0.093, rank: 3, count: 7, ...over };
}

function linkTargets(md: string): string[] {
  return [...md.matchAll(/\]\(([^ )]+)/g)].map((m) => m[1]);
}

test('hover Markdown: SID mean ± std, rank, report; one trusted command link with decodable arguments', () => {
  const md = layerHoverMarkdown('block2_conv', [entry()]) as unknown as MarkdownString;
  assert.deepEqual(md.isTrusted, { enabledCommands: [SHOW_LAYER_COMMAND] });
  assert.equal(md.supportHtml, false);
  assert.equal(md.supportThemeIcons, false);
  assert.match(md.value, /block2\\_conv/);
  assert.match(md.value, /SID -0\.597 ± 0\.093 nats\/pixel, rank 3 of 7 \(1 = discards most\)/);
  assert.match(md.value, /\*\*fashion\\-cnn\*\* \(Conv2D\)/);
  const links = linkTargets(md.value);
  assert.equal(links.length, 1);
  assert.match(links[0], /^command:infodiscard\.showLayer\?/);
  assert.deepEqual(JSON.parse(decodeURIComponent(links[0].slice(links[0].indexOf('?') + 1))), [{ report: '/w/.infodiscard/a.json', layer: 'block2_conv' }]);
});

test('hover Markdown: RU ± std with the decoder\'s PSNR, concentration and |grad| when the report has them', () => {
  const md = (layerHoverMarkdown('block2_conv', [
    entry({ ru: { mean: 1.2346, std: 0.0512, psnr: 18.26 }, concentration: { mean: 0.1204, std: 0.01, images: 2 }, gradNorm: 0.001234 }),
    entry({ model: 'net-b', reportPath: '/r/b.json', ru: { mean: 2.5, std: 0.1, psnr: 12.34 }, concentration: null }),
    entry({ model: 'net-c', reportPath: '/r/c.json' }),
  ]) as unknown as MarkdownString).value;
  const lines = md.split('\n').filter((l) => l.startsWith('- '));
  assert.equal(lines.length, 3, 'one line per report, as before');
  assert.match(lines[0], /SID -0\.597 ± 0\.093 nats\/pixel, rank 3 of 7 \(1 = discards most\); RU 1\.235 ± 0\.051 \(decoder 18\.3 dB\), concentration 0\.120, \\\|grad\\\| 0\.00123 · /);
  assert.match(lines[1], /; RU 2\.500 ± 0\.100 \(decoder 12\.3 dB, poor\) · /, 'a poor decoder is flagged; no regions, no concentration');
  assert.doesNotMatch(lines[2], /RU|concentration|grad/, 'SID only');
  assert.equal(linkTargets(md).length, 3, 'no links beyond the command links');
});

test('hover Markdown: a hostile layer name and model name stay text', () => {
  const evil = EVIL_LAYER_NAME; // <img src=x onerror=alert(1)>
  const md = (layerHoverMarkdown(evil, [entry({ model: '[x](command:workbench.action.quit)', kind: '<b>k</b>' })]) as unknown as MarkdownString).value;
  assert.ok(!md.includes('<img'), 'no raw HTML tag');
  assert.ok(!md.includes('<b>'), 'no raw HTML in the kind');
  assert.match(md, /&lt;img src=x onerror=alert\\\(1\\\)&gt;/);
  assert.ok(!md.includes('](command:workbench'), 'a link in the model name is escaped');
  assert.deepEqual(linkTargets(md).map((l) => l.split('?')[0]), ['command:infodiscard.showLayer'], 'the only link is ours');
  // The command arguments carry the hostile name intact, and nothing in them can close the link early.
  const link = linkTargets(md)[0];
  assert.ok(!/[()<> ]/.test(link), 'parentheses, brackets and spaces are percent-encoded');
  assert.equal(JSON.parse(decodeURIComponent(link.split('?')[1]))[0].layer, evil);
});

test('hover Markdown: several reports listed, newest first, with status', () => {
  const md = (layerHoverMarkdown('conv2d_3', [
    entry({ model: 'net-a', reportPath: '/r/a.json' }),
    entry({ model: 'net-b', reportPath: '/r/b.json', status: 'cancelled', rank: 1, count: 2 }),
  ]) as unknown as MarkdownString).value;
  assert.equal(md.split('\n').filter((l) => l.startsWith('- ')).length, 2);
  assert.match(md, /net\\-a/);
  assert.match(md, /net\\-b.*rank 1 of 2.*cancelled/);
  assert.equal(linkTargets(md).length, 2);
});

function withReport(layers: [string, number][], model: string): Report {
  const r = sampleReport();
  const proto = r.layers[0];
  r.model = { ...r.model, path: `/models/${model}/model.json` };
  r.layers = layers.map(([name, mean]) => ({ ...proto, name, sid: { ...proto.sid, mean, std: 0.05 } }));
  r.requestedLayers = layers.map(([n]) => n);
  return r;
}

test('hover provider: lazy index, several reports, ranks, watcher updates, no reads per hover', async () => {
  mock.reset();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-hover-'));
  try {
    const folder = path.join(dir, '.infodiscard');
    writeReport(path.join(folder, 'a.json'), withReport([['conv2d_1', -3], ['block2_conv', -1], ['dense', -2]], 'net-a'));
    writeReport(path.join(folder, 'b.json'), withReport([['block2_conv', -0.5], [EVIL_LAYER_NAME, -0.2]], 'net-b'));
    let reads = 0;
    const store = new ReportStore();
    const summary = store.summary.bind(store);
    store.summary = (f: string) => {
      reads++;
      return summary(f);
    };
    const index = new LayerIndex(store, () => [folder]);
    const provider = new LayerHoverProvider(index);
    const token = new CancellationTokenSource().token;
    const hover = (text: string, lang = 'python') => {
      const ch = text.indexOf('|');
      return provider.provideHover(makeDocument(text.replace('|', ''), lang) as never, new Position(0, ch) as never, token as never);
    };

    assert.equal(await hover('x = conv2d|_1'), undefined);
    assert.equal(index.isBuilt, false, 'no string under the cursor: the index is not even built');
    assert.equal(reads, 0);
    assert.equal(mock.watchers.length, 0);

    const h = await hover('layer = model.get_layer("block2|_conv")');
    assert.ok(h, 'hover over a known layer');
    const md = (h as unknown as { contents: MarkdownString[] }).contents[0].value;
    assert.match(md, /net\\-a.*SID -1\.000 ± 0\.050.*rank 1 of 3/);
    assert.match(md, /net\\-b.*SID -0\.500 ± 0\.050.*rank 2 of 2/);
    const range = (h as unknown as { range: { start: { character: number }; end: { character: number } } }).range;
    assert.deepEqual([range.start.character, range.end.character], [24, 37], 'the range covers the literal');
    assert.equal(reads, 2, 'both reports read once, on the first hover');
    assert.equal(mock.watchers.length, 1);
    assert.equal(mock.watchers[0].pattern.pattern, '*.json');

    assert.equal(await hover('name = "not_a_|layer"'), undefined);
    assert.ok(await hover('const x = "den|se";', 'typescript'));
    assert.ok(await hover(`y = "${EVIL_LAYER_NAME.replace('src', 's|rc')}"`));
    assert.equal(reads, 2, 'later hovers are lookups');

    // A new report appears: the watcher refreshes just that file.
    writeReport(path.join(folder, 'c.json'), withReport([['brand_new', -1]], 'net-c'));
    mock.watchers[0].create.fire(Uri.file(path.join(folder, 'c.json')) as never);
    await new Promise((r) => setTimeout(r, 250));
    assert.ok(await hover('"brand|_new"'));
    assert.equal(reads, 3);
    // A deleted report disappears.
    rmSync(path.join(folder, 'a.json'));
    mock.watchers[0].delete.fire(Uri.file(path.join(folder, 'a.json')) as never);
    assert.equal(await hover('"conv2d|_1"'), undefined);
    const after = (await hover('"block2|_conv"')) as unknown as { contents: MarkdownString[] };
    assert.doesNotMatch(after.contents[0].value, /net\\-a/);
    index.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hover provider: a schema-2 report\'s RU, concentration and gradient magnitude reach the hover', async () => {
  mock.reset();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-hover-'));
  try {
    const folder = path.join(dir, '.infodiscard');
    const r = withReport([['block2_conv', -1], ['dense', -2]], 'net-ru');
    const decoder = { key: 'k', psnr: 21.04, trainLoss: 0.01, heldOutLoss: 0.012, epochs: 9, trainImages: 200, heldOutImages: 46, cached: true, seconds: 0 };
    r.settings = { ...r.settings, metrics: ['sid', 'ru', 'concentration', 'baselines'] };
    r.layers[0] = {
      ...r.layers[0],
      ru: { mean: 0.75, std: 0.125, total: 588, decoder },
      concentration: { mean: 0.31, std: 0.02, images: 2 },
      baselines: { gradNorm: { mean: 0.0456, std: 0.001 }, gradCam: { mean: 0.2, std: 0.01 }, cam: null },
    };
    writeReport(path.join(folder, 'a.json'), r);
    const index = new LayerIndex(new ReportStore(), () => [folder]);
    const provider = new LayerHoverProvider(index);
    const token = new CancellationTokenSource().token;
    const h = (await provider.provideHover(makeDocument('m.get_layer("block2_conv")', 'python') as never, new Position(0, 15) as never, token as never)) as unknown as { contents: MarkdownString[] };
    assert.match(h.contents[0].value, /net\\-ru.*SID -1\.000 ± 0\.050.*; RU 0\.750 ± 0\.125 \(decoder 21\.0 dB\), concentration 0\.310, \\\|grad\\\| 0\.0456/);
    const d = (await provider.provideHover(makeDocument('m.get_layer("dense")', 'python') as never, new Position(0, 15) as never, token as never)) as unknown as { contents: MarkdownString[] };
    assert.doesNotMatch(d.contents[0].value, /RU|concentration/, 'a layer without them shows SID only');
    index.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hover provider: no reports folder yet costs one failed directory read, then nothing', async () => {
  mock.reset();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-hover-'));
  try {
    const index = new LayerIndex(new ReportStore(), () => [path.join(dir, '.infodiscard')]);
    const provider = new LayerHoverProvider(index);
    const doc = makeDocument('x = "conv2d_1"', 'python');
    const token = new CancellationTokenSource().token;
    assert.equal(await provider.provideHover(doc as never, new Position(0, 7) as never, token as never), undefined);
    assert.equal(index.isBuilt, true);
    assert.equal(mock.watchers.length, 1, 'watching the folder so its creation is noticed');
    index.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('modelsMentioned: a model path or file name in a string literal of the document, on a path boundary', () => {
  const models = ['/w/web/fashion-cnn/model.json', '/w/ckpt/mnist.h5', '/w/onnx/resnet18.onnx', '/w/other/model.json'];
  assert.deepEqual(modelsMentioned('m = keras.models.load_model("ckpt/mnist.h5")', models), ['/w/ckpt/mnist.h5']);
  assert.deepEqual(modelsMentioned("const m = await tf.loadLayersModel('file://web/fashion-cnn/model.json');", models), ['/w/web/fashion-cnn/model.json']);
  assert.deepEqual(modelsMentioned('MODEL_DIR = "web/fashion-cnn/"', models), ['/w/web/fashion-cnn/model.json'], 'the folder of a model.json');
  assert.deepEqual(modelsMentioned('p = r"C:\\work\\onnx\\resnet18.onnx"', models), ['/w/onnx/resnet18.onnx'], 'backslashes');
  assert.deepEqual(modelsMentioned('x = "my_mnist.h5"; y = "fashion-cnn-v2"', models), [], 'not inside a longer name');
  assert.deepEqual(modelsMentioned('# mnist.h5 in a comment, not a literal', models), []);
  assert.deepEqual(modelsMentioned('a = "model.json"', models), [], 'a bare model.json names no particular model');
});

test('hover order: the model the file names first, else the most recently analysed model; other models after', () => {
  const a = entry({ reportPath: '/r/a.json', model: 'net-a', modelPath: '/m/net-a/model.json', createdAt: '2024-01-01T00:00:00.000Z', mean: -1 });
  const b = entry({ reportPath: '/r/b.json', model: 'net-b', modelPath: '/m/net-b.h5', createdAt: '2024-05-01T00:00:00.000Z', mean: -2 });
  const b2 = entry({ reportPath: '/r/b2.json', model: 'net-b', modelPath: '/m/net-b.h5', createdAt: '2024-04-01T00:00:00.000Z', mean: -3 });
  const entries = [b, b2, a]; // the index's order: newest first
  const models = ['/m/net-b.h5', '/m/net-a/model.json']; // most recent first

  const named = orderForDocument(entries, 'model = tf.loadLayersModel("file://m/net-a/model.json")', models);
  assert.deepEqual(named.entries.map((e) => e.reportPath), ['/r/a.json', '/r/b.json', '/r/b2.json']);
  assert.deepEqual(named.own, ['/m/net-a/model.json']);
  assert.equal(named.mentioned, true);
  const md = (layerHoverMarkdown('conv', named.entries, named) as unknown as MarkdownString).value;
  assert.ok(md.indexOf('The model this file names') < md.indexOf('net\\-a'), md);
  assert.ok(md.indexOf('net\\-a') < md.indexOf('Other models') && md.indexOf('Other models') < md.indexOf('net\\-b'), md);

  const none = orderForDocument(entries, 'x = "conv"', models);
  assert.deepEqual(none.entries.map((e) => e.reportPath), ['/r/b.json', '/r/b2.json', '/r/a.json'], 'the most recent model, its reports newest first');
  assert.equal(none.mentioned, false);
  assert.match((layerHoverMarkdown('conv', none.entries, none) as unknown as MarkdownString).value, /The most recently analysed model/);

  // Only one model has the layer: no headings.
  const single = orderForDocument([a], 'x = "conv"', models);
  assert.deepEqual(single.own, []);
  assert.doesNotMatch((layerHoverMarkdown('conv', single.entries, single) as unknown as MarkdownString).value, /Other models|most recently/);
});

test('hover provider: the document\'s model comes first even when another model analysed the layer more recently', async () => {
  mock.reset();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-hover-'));
  try {
    const folder = path.join(dir, '.infodiscard');
    const older = withReport([['conv2d_1', -3]], 'net-a');
    older.createdAt = '2024-01-01T00:00:00.000Z';
    const newer = withReport([['conv2d_1', -1]], 'net-b');
    newer.createdAt = '2024-06-01T00:00:00.000Z';
    writeReport(path.join(folder, 'a.json'), older);
    writeReport(path.join(folder, 'b.json'), newer);
    const index = new LayerIndex(new ReportStore(), () => [folder]);
    const provider = new LayerHoverProvider(index);
    const token = new CancellationTokenSource().token;
    const hover = async (text: string) => {
      const lines = text.split('\n');
      const line = lines.findIndex((l) => l.includes('|'));
      const h = await provider.provideHover(makeDocument(text.replace('|', ''), 'python') as never, new Position(line, lines[line].indexOf('|')) as never, token as never);
      return (h as unknown as { contents: MarkdownString[] }).contents[0].value;
    };
    const inA = await hover('model = load("models/net-a/model.json")\nh = model.get_layer("conv2d|_1")');
    assert.ok(inA.indexOf('net\\-a') < inA.indexOf('net\\-b'), inA);
    const plain = await hover('h = model.get_layer("conv2d|_1")');
    assert.ok(plain.indexOf('net\\-b') < plain.indexOf('net\\-a'), 'no model named: the most recently analysed first');
    index.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hover Markdown: a flagged layer (schema 3) prints "≥" before a bound and a ⚠ line with the reason', async () => {
  const md = (layerHoverMarkdown('out_relu', [
    entry({ quality: { verdict: 'saturated', reason: '1 of 1 image: the SID is a lower bound; try a higher --sigma-max', bound: true } }),
    entry({ model: 'net-b', reportPath: '/r/b.json' }),
  ]) as unknown as MarkdownString).value;
  assert.match(md, /SID ≥-0\.597 ± 0\.093/);
  assert.match(md, /⚠ SID saturated: 1 of 1 image\\: the SID is a lower bound; try a higher \\-\\-sigma\\-max/);
  assert.equal((md.match(/⚠/g) ?? []).length, 1, 'only the flagged report');

  // The store reads the roll-up from the report file; an ok layer carries none.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-hover-q-'));
  try {
    const r = withReport([['a', -1], ['b', 1.419]], 'net-q');
    r.layers[0] = { ...r.layers[0], quality: { verdict: 'ok', counts: { ok: 2 } } };
    r.layers[1] = { ...r.layers[1], quality: { verdict: 'saturated', counts: { saturated: 2 }, reason: '2 of 2 images: lower bound' } };
    writeReport(path.join(dir, 'q.json'), r);
    const s = await new ReportStore().summary(path.join(dir, 'q.json'));
    assert.equal(s?.layers[0].quality, undefined);
    assert.deepEqual(s?.layers[1].quality, { verdict: 'saturated', reason: '2 of 2 images: lower bound', bound: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
