/**
 * The extension's manifest and bundle: commands declared, registered and wired into menus consistently; context
 * menus only on model.json; settings declared with ranges; dist/extension.js free of TensorFlow.js and quick to
 * activate.
 */
import { mock, makeExtensionContext } from './helpers/vscode-mock';
import { test } from 'node:test';
import { activate } from '../src/extension/main';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { PNG } from 'pngjs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_DECODER, DEFAULT_SETTINGS, LIGHT_DECODER } from '../src/engine/settings';
import { DECODER_PRESETS, EXTRA_METRICS, LAYER_SETTINGS } from '../src/extension/config';
import { SPLIT_SAMPLES_CHOICES } from '../src/worker/parallel';
import { NATIVE_CHOICES } from '../src/engine/native/choice';

const ROOT = path.resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const contributes = pkg.contributes;

interface MenuItem {
  command: string;
  when?: string;
  group?: string;
}

test('every command has the "infodiscard" category and an id under infodiscard.', () => {
  const ids = contributes.commands.map((c: { command: string }) => c.command);
  assert.deepEqual(ids.sort(), [
    'infodiscard.analyzeModel', 'infodiscard.cancelAnalysis', 'infodiscard.checkCoherency', 'infodiscard.compareCheckpoints', 'infodiscard.compareExample', 'infodiscard.compareModels', 'infodiscard.editPreprocessing', 'infodiscard.openReport',
    'infodiscard.reports.compare', 'infodiscard.reports.delete', 'infodiscard.reports.open', 'infodiscard.reports.refresh', 'infodiscard.reports.rerun', 'infodiscard.showLayer',
    'infodiscard.showLog',
  ]);
  const coherency = contributes.commands.find((c: { command: string }) => c.command === 'infodiscard.checkCoherency');
  assert.equal(coherency.title, 'Check Coherency (Rescale a Conv Pair)…');
  for (const c of contributes.commands) {
    assert.equal(c.category, 'infodiscard', c.command);
    assert.ok(c.title && !c.title.startsWith('infodiscard'), `${c.command}: the category prefixes the title already`);
  }
});

test('menus name only declared commands; context menus filter on model.json', () => {
  const ids = new Set(contributes.commands.map((c: { command: string }) => c.command));
  for (const [menu, items] of Object.entries(contributes.menus as Record<string, MenuItem[]>)) {
    for (const item of items) assert.ok(ids.has(item.command), `${menu}: ${item.command} is not a declared command`);
  }
  for (const menu of ['explorer/context', 'editor/title', 'editor/context']) {
    const items = contributes.menus[menu] as MenuItem[];
    assert.ok(items.length > 0, `${menu} has entries`);
    for (const item of items) {
      // Compare Checkpoints works on a folder of checkpoints, not on one model file.
      if (item.command === 'infodiscard.compareCheckpoints') {
        assert.equal(menu, 'explorer/context');
        assert.equal(item.when, 'explorerResourceIsFolder');
        continue;
      }
      // Open Report… on a shard part opens its folder of parts (merged on open).
      if (item.command === 'infodiscard.openReport') {
        assert.equal(menu, 'explorer/context');
        assert.equal(item.when, 'resourceFilename =~ /^shard-[0-9]+-of-[0-9]+\\.json$/');
        continue;
      }
      assert.match(item.when ?? '', /resourceFilename == model\.json/, `${menu}: ${item.command} must filter on model.json`);
      assert.match(item.when ?? '', /resourceExtname =~ \/\^\\\.\(h5\|hdf5\|keras\|onnx\|pt\|pth\|pt2\)\$\/i/, `${menu}: ${item.command} must offer Keras, ONNX and PyTorch files`);
      // Keras to_json files are JSON named as the user likes: the extension lists those with weights beside them.
      assert.match(item.when ?? '', /resourceExtname == \.json && resourcePath in infodiscard\.kerasJsonFiles/, `${menu}: ${item.command} must offer Keras to_json files`);
    }
  }
  const explorer = contributes.menus['explorer/context'] as MenuItem[];
  assert.ok(explorer.some((i) => i.command === 'infodiscard.analyzeModel'));
  assert.ok(explorer.some((i) => i.command === 'infodiscard.compareModels' && /listMultiSelection/.test(i.when ?? '')));
  // The coherency check sits where Analyze Model does in the context menus, with the same filter.
  for (const menu of ['explorer/context', 'editor/context']) {
    const items = contributes.menus[menu] as MenuItem[];
    const analyze = items.find((i) => i.command === 'infodiscard.analyzeModel');
    const coherency = items.find((i) => i.command === 'infodiscard.checkCoherency');
    assert.ok(coherency, `${menu} offers the coherency check`);
    assert.equal(coherency.when, analyze?.when, `${menu}: the same files as Analyze Model`);
    assert.match(coherency.group ?? '', /^infodiscard@\d+$/);
  }
  assert.ok((contributes.menus['editor/title'] as MenuItem[]).every((i) => i.group === 'navigation'), 'editor title action is a visible button');
  const palette = new Map((contributes.menus.commandPalette as MenuItem[]).map((i) => [i.command, i.when]));
  assert.equal(palette.get('infodiscard.showLayer'), 'false', 'the hover-only command is hidden from the palette');
  assert.equal(palette.get('infodiscard.cancelAnalysis'), 'infodiscard.running');
  for (const shown of ['infodiscard.analyzeModel', 'infodiscard.compareModels', 'infodiscard.checkCoherency', 'infodiscard.openReport', 'infodiscard.showLog']) {
    assert.ok(!palette.has(shown), `${shown} stays in the palette`);
  }
});

test('activation events: own views, restore and hover languages only', () => {
  for (const e of pkg.activationEvents as string[]) {
    assert.match(e, /^(onLanguage:(python|typescript|javascript|typescriptreact|javascriptreact)|onWebviewPanel:infodiscard\.report)$/, e);
  }
  assert.ok(pkg.activationEvents.includes('onWebviewPanel:infodiscard.report'));
  assert.ok(!pkg.activationEvents.includes('*') && !pkg.activationEvents.includes('onStartupFinished'));
  assert.equal(pkg.main, './dist/extension.js');
  assert.equal(pkg.engines.vscode, '^1.90.0');
  assert.equal(pkg.capabilities.untrustedWorkspaces.supported, false);
  assert.match(pkg.capabilities.untrustedWorkspaces.description, /runs model files/);
});

test('settings: declared with the engine defaults and ranges', () => {
  const props = contributes.configuration.properties;
  const expect: Record<string, unknown> = {
    'infodiscard.backend': DEFAULT_SETTINGS.backend,
    'infodiscard.samplesPerStep': DEFAULT_SETTINGS.samples,
    'infodiscard.maxSteps': DEFAULT_SETTINGS.maxSteps,
    'infodiscard.alpha': DEFAULT_SETTINGS.alpha,
    'infodiscard.tau': DEFAULT_SETTINGS.tau,
    'infodiscard.sigmaMax': DEFAULT_SETTINGS.sigmaMax,
    'infodiscard.sigmaGrid': 0,
    'infodiscard.images': '',
    'infodiscard.inputRange': '0,1',
    'infodiscard.reportsFolder': '.infodiscard',
    'infodiscard.workers': 0,
    'infodiscard.splitSamples': 'auto',
    'infodiscard.native': 'auto',
    'infodiscard.metrics': [],
    'infodiscard.search': 'optimised',
    'infodiscard.previewFirst': false,
    'infodiscard.outputSoftmax': false,
    'infodiscard.decoder': 'default',
    'infodiscard.trainImages': '',
    'infodiscard.boxesFile': '',
    'infodiscard.resize': '',
    'infodiscard.transparency': '',
    'infodiscard.layers': 'ask',
    'infodiscard.python': '',
    'infodiscard.preprocessingPrompt': true,
  };
  assert.deepEqual(Object.keys(props).sort(), Object.keys(expect).sort());
  for (const [key, value] of Object.entries(expect)) assert.deepEqual(props[key].default, value, key);
  for (const key of ['samplesPerStep', 'maxSteps', 'sigmaGrid', 'workers']) {
    const p = props[`infodiscard.${key}`];
    assert.equal(p.type, 'integer', key);
    assert.ok(typeof p.minimum === 'number' && typeof p.maximum === 'number', `${key} has a range`);
  }
  for (const key of ['alpha', 'tau', 'sigmaMax']) {
    const p = props[`infodiscard.${key}`];
    assert.ok(p.exclusiveMinimum === 0 && typeof p.maximum === 'number', `${key} has a range`);
  }
  assert.deepEqual(props['infodiscard.backend'].enum, ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu']);
  assert.deepEqual(props['infodiscard.layers'].enum, [...LAYER_SETTINGS]);
  assert.deepEqual(props['infodiscard.splitSamples'].enum, [...SPLIT_SAMPLES_CHOICES], 'the choices the pool takes');
  assert.equal(props['infodiscard.splitSamples'].enumDescriptions.length, SPLIT_SAMPLES_CHOICES.length);
  assert.deepEqual(props['infodiscard.native'].enum, [...NATIVE_CHOICES], 'the choices the engine takes');
  assert.equal(props['infodiscard.native'].enumDescriptions.length, NATIVE_CHOICES.length);
});

test('settings: the metrics and decoder settings offer what the extension accepts, each described', () => {
  const props = contributes.configuration.properties;
  const metrics = props['infodiscard.metrics'];
  assert.equal(metrics.type, 'array');
  assert.equal(metrics.uniqueItems, true);
  assert.deepEqual(metrics.items.enum, [...EXTRA_METRICS], 'SID always runs: not listed');
  assert.equal(metrics.items.markdownEnumDescriptions.length, EXTRA_METRICS.length);
  const decoder = props['infodiscard.decoder'];
  assert.deepEqual(decoder.enum, Object.keys(DECODER_PRESETS));
  assert.deepEqual([DECODER_PRESETS.default, DECODER_PRESETS.light], [DEFAULT_DECODER, LIGHT_DECODER]);
  assert.match(decoder.markdownDescription, new RegExp(`${DEFAULT_DECODER.blocks} residual blocks`), 'the paper\'s six blocks');
  assert.match(decoder.enumDescriptions[0], new RegExp(`${DEFAULT_DECODER.blocks} residual blocks \\(${DEFAULT_DECODER.width} channels, up to ${DEFAULT_DECODER.maxEpochs} epochs\\)`));
  assert.match(decoder.enumDescriptions[1], new RegExp(`${LIGHT_DECODER.blocks} residual blocks, ${LIGHT_DECODER.width} channels, up to ${LIGHT_DECODER.maxEpochs} epochs`));
  assert.match(props['infodiscard.trainImages'].markdownDescription, /media\/sample\/train/);
  assert.match(props['infodiscard.boxesFile'].markdownDescription, /boxes\.json/);
  for (const key of ['metrics', 'decoder', 'trainImages', 'boxesFile']) assert.equal(props[`infodiscard.${key}`].scope, 'resource', key);
});

test('activate registers every declared command, and only those', async () => {
  const context = makeExtensionContext();
  const ctx = activate(context as never);
  const declared = contributes.commands.map((c: { command: string }) => c.command).sort();
  assert.deepEqual([...mock.commands.keys()].sort(), declared);
  assert.ok(mock.serializers.has('infodiscard.report'), 'panel serializer registered for restore');
  assert.equal(mock.hoverProviders.length, 1);
  assert.equal(mock.log.length, 0, 'nothing logged (no output channel created) at activation');
  await ctx.dispose();
  for (const d of context.subscriptions) d.dispose();
  assert.equal(mock.commands.size, 0, 'commands disposed with the extension');
});

function bundle(): string {
  const file = path.join(ROOT, 'dist', 'extension.js');
  if (!existsSync(file)) execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  return readFileSync(file, 'utf8');
}

test('dist/extension.js holds no TensorFlow.js', () => {
  const js = bundle();
  for (const marker of ['@tensorflow/', 'tfjs-core', 'tfjs-layers', 'tfjs-backend', 'registerKernel', 'registerGradient', 'loadLayersModel', 'setWasmPaths']) {
    assert.ok(!js.includes(marker), `extension bundle contains "${marker}"`);
  }
  const requires = [...js.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
  assert.deepEqual([...new Set(requires.filter((r) => !r.startsWith('node:')))], ['vscode'], 'only vscode and node built-ins are required');
});

test('dist/extension.js is small and activates with the mock without forking or watching anything', async (t) => {
  bundle();
  // Plain Node in a fresh process (tsx would add its own transform time): the mock is compiled to JS first.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-ext-'));
  const mockJs = path.join(dir, 'vscode-mock.js');
  const esbuild = await import('esbuild');
  esbuild.buildSync({ entryPoints: [path.join(__dirname, 'helpers', 'vscode-mock.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: mockJs, logLevel: 'error' });
  const script = `
    const { makeExtensionContext, mock } = require(${JSON.stringify(mockJs)});
    const t0 = performance.now();
    const ext = require(${JSON.stringify(path.join(ROOT, 'dist', 'extension.js'))});
    const t1 = performance.now();
    const ctx = ext.activate(makeExtensionContext(${JSON.stringify(ROOT)}));
    const t2 = performance.now();
    console.log(JSON.stringify({ load: t1 - t0, activate: t2 - t1, commands: mock.commands.size, watchers: mock.watchers.length }));
  `;
  try {
    const out = execFileSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').pop()!);
    assert.equal(r.commands, contributes.commands.length);
    assert.equal(r.watchers, 0, 'no file watcher until the first hover');
    // Load time is measured, not asserted (timings belong to benchmarks); the bundle's size is what keeps it low.
    t.diagnostic(`load ${r.load.toFixed(1)} ms + activate ${r.activate.toFixed(1)} ms`);
    const size = statSync(path.join(ROOT, 'dist', 'extension.js')).size;
    assert.ok(size < 512 * 1024, `dist/extension.js is ${(size / 1024).toFixed(0)} KB: something heavy was bundled into the extension host`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('activity bar: an "infodiscard" container with its SVG icon, the Reports view in it, its actions declared', () => {
  const container = contributes.viewsContainers.activitybar.find((c: { id: string }) => c.id === 'infodiscard');
  assert.ok(container, 'view container');
  assert.equal(container.title, 'infodiscard');
  assert.match(container.icon, /^media\/.+\.svg$/);
  const svg = readFileSync(path.join(ROOT, container.icon), 'utf8');
  assert.match(svg, /^<svg [^>]*viewBox="0 0 24 24"/, 'a 24x24 SVG');
  assert.match(svg, /currentColor/, 'monochrome, so it takes the theme\'s colour');
  const views = contributes.views.infodiscard as { id: string; name: string }[];
  assert.deepEqual(views.map((v) => v.id), ['infodiscard.reports']);
  const ids = new Set(contributes.commands.map((c: { command: string }) => c.command));
  const items = contributes.menus['view/item/context'] as MenuItem[];
  for (const action of ['open', 'rerun', 'compare', 'delete']) {
    const inline = items.find((i) => i.command === `infodiscard.reports.${action}` && /^inline/.test(i.group ?? ''));
    assert.ok(inline, `${action} is an inline action`);
    assert.match(inline.when ?? '', /view == infodiscard\.reports/);
    assert.match(inline.when ?? '', /viewItem =~/);
    const palette = (contributes.menus.commandPalette as MenuItem[]).find((i) => i.command === `infodiscard.reports.${action}`);
    assert.equal(palette?.when, 'false', `${action} needs a tree item: hidden from the palette`);
  }
  for (const i of contributes.menus['view/title'] as MenuItem[]) assert.ok(ids.has(i.command), i.command);
  const welcome = contributes.viewsWelcome.find((w: { view: string }) => w.view === 'infodiscard.reports');
  assert.match(welcome.contents, /command:infodiscard\.analyzeModel/);
  assert.match(welcome.contents, new RegExp(`workbench\\.action\\.openWalkthrough\\?%22${pkg.publisher}\\.${pkg.name}%23${contributes.walkthroughs[0].id}%22`), 'the walkthrough link names this extension\'s walkthrough');
});

test('walkthrough: four steps (sample, panel, compare, preprocessing), each with markdown whose image exists', () => {
  const [walk] = contributes.walkthroughs;
  assert.equal(walk.id, 'infodiscard.gettingStarted');
  assert.deepEqual(walk.steps.map((s: { id: string }) => s.id), ['analyseSample', 'readPanel', 'compareCheckpoints', 'preprocessing']);
  const ids = new Set(contributes.commands.map((c: { command: string }) => c.command));
  for (const step of walk.steps) {
    const md = path.join(ROOT, step.media.markdown);
    assert.ok(existsSync(md), `${step.id}: ${step.media.markdown}`);
    const images = [...readFileSync(md, 'utf8').matchAll(/!\[([^\]]+)\]\(([^)]+)\)/g)];
    assert.ok(images.length >= 1, `${step.id}: an image`);
    for (const [, alt, src] of images) {
      assert.ok(alt.length > 10, `${step.id}: alt text`);
      const file = path.join(path.dirname(md), src);
      assert.ok(existsSync(file), `${step.id}: ${src} exists`);
      assert.ok(statSync(file).size > 1000, `${step.id}: ${src} is a real image`);
    }
    // Command links: our commands, plus the preprocessing editor (declared by the preprocessing work) and VS Code's own.
    for (const [, command] of step.description.matchAll(/\(command:([\w.]+)/g)) {
      assert.ok(ids.has(command) || command === 'infodiscard.editPreprocessing' || command.startsWith('workbench.'), `${step.id}: ${command}`);
    }
  }
  assert.match(walk.steps[3].description, /command:infodiscard\.editPreprocessing/);
});

test('extension icon: a 128x128 PNG in media/, shipped (the .vscodeignore allowlist keeps media/)', () => {
  assert.equal(pkg.icon, 'media/icon.png');
  const png = PNG.sync.read(readFileSync(path.join(ROOT, pkg.icon)));
  assert.deepEqual([png.width, png.height], [128, 128]);
  const ignore = readFileSync(path.join(ROOT, '.vscodeignore'), 'utf8').split('\n').map((l) => l.trim());
  assert.equal(ignore.find((l) => l && !l.startsWith('#')), '**', 'an allowlist: everything excluded first');
  assert.ok(ignore.includes('!media/**'), 'media/ is shipped (icon, screenshot, walkthrough)');
  assert.ok(ignore.includes('!README.md'));
});

test('README: user first, a screenshot that ships in the VSIX, the two quick-start commands, every setting', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const shots = [...readme.matchAll(/!\[[^\]]+\]\(([^)]+)\)/g)].map((m) => m[1]);
  assert.ok(shots.length >= 1, 'a screenshot');
  for (const src of shots) {
    assert.ok(!/^[a-z]+:/i.test(src), `${src}: a relative path (the VSIX is packaged with --no-rewrite-relative-links)`);
    assert.match(src, /^media\//, `${src}: under media/, which .vscodeignore keeps`);
    assert.ok(existsSync(path.join(ROOT, src)), `${src} exists`);
  }
  assert.ok(readme.includes('npm install && npm run demo'), 'quick start kept');
  assert.ok(readme.includes('npm test'), 'npm test kept');
  // What it shows comes before how to develop it.
  const dev = readme.search(/^## .*(Develop|Contribut)/m);
  assert.ok(readme.indexOf('media/screenshot.png') < (dev < 0 ? Infinity : dev));
  for (const key of Object.keys(contributes.configuration.properties)) assert.ok(readme.includes(`\`${key}\``), `README settings table lists ${key}`);
});
