/**
 * The report panel against the mocked webview: HTML and CSP, the ready handshake (nothing posted before
 * 'ready', the latest content delivered after it, again after a reload), live updates, compare, layer selection,
 * exports through the save dialog, and restore from the webview's saved state. Object boxes ('setRegion'): the
 * report file updated atomically (region, mask, every layer's concentration, equal to the engine's pure functions),
 * cleared, refused while an analysis writes the file, and malformed requests ignored or refused.
 */
import { makeExtensionContext, mock, Uri, ViewColumn, window, type MockWebviewPanel } from './helpers/vscode-mock';
import { test } from 'node:test';
import { activate } from '../src/extension/main';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { concentration, maskRows, regionMaskFromBox, summarizeConcentration } from '../src/engine/concentration';
import type { Report } from '../src/engine/report';
import { readReport, writeReport } from '../src/engine/reportFile';
import type { ToWebview } from '../src/protocol';
import { Ctx } from '../src/extension/ctx';
import { ReportPanel, sourcesFromState } from '../src/extension/panel';
import { sampleReport, sampleReportV2, V2_ORIGINAL_SIZES, V2_REGIONS } from './fixtures/sample-report';

const ROOT = path.resolve(__dirname, '..');
const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

function setup() {
  mock.reset();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-panel-'));
  const ctx = new Ctx(makeExtensionContext(ROOT, path.join(dir, 'storage')) as never);
  return { dir, ctx, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function types(p: MockWebviewPanel): string[] {
  return p.webview.posted.map((m) => (m as ToWebview).type);
}

test('panel HTML: strict CSP with a nonce, script from dist/, resources limited to dist/', () => {
  const { ctx, dir, done } = setup();
  try {
    const file = path.join(dir, 'r.json');
    ReportPanel.createOrShow(ctx, [{ path: file, label: 'net' }]);
    const p = mock.panels[0];
    assert.equal(p.viewType, 'infodiscard.report');
    const options = p.options as { enableScripts: boolean; localResourceRoots: Uri[] };
    assert.equal(options.enableScripts, true);
    assert.deepEqual(options.localResourceRoots.map((u) => u.fsPath), [path.join(ROOT, 'dist')]);
    const html = p.webview.html;
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1] ?? '';
    const nonce = /'nonce-([A-Za-z0-9]+)'/.exec(csp)?.[1] ?? '';
    assert.ok(nonce.length >= 16);
    assert.equal(csp, `default-src 'none'; img-src https://mock.vscode-cdn.net data: blob:; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'`);
    assert.match(html, new RegExp(`<script nonce="${nonce}" src="https://file\\+\\.vscode-resource\\.vscode-cdn\\.net${path.join(ROOT, 'dist', 'webview.js').replace(/[.+]/g, '\\$&')}"></script>`));
    assert.equal(html.match(/<script/g)?.length, 1, 'no inline script, no embedded report');
    assert.equal(p.title, 'SID: net');
    ReportPanel.all().forEach((x) => x.dispose());
  } finally {
    done();
  }
});

test('ready handshake: nothing is posted before ready; the latest state is delivered after, and again after a reload', async () => {
  const { ctx, dir, done } = setup();
  try {
    const file = path.join(dir, 'r.json');
    const panel = ReportPanel.createOrShow(ctx, [{ path: file, label: 'net' }]);
    const p = mock.panels[0];
    panel.update(file, sampleReport({ finishedLayers: 1, status: 'running' }));
    panel.update(file, sampleReport({ finishedLayers: 2, status: 'running' }));
    panel.selectLayer('conv2d_1');
    await tick();
    assert.deepEqual(p.webview.posted, [], 'nothing before ready');

    p.receive({ type: 'ready' });
    await tick();
    assert.deepEqual(types(p), ['panelState', 'report', 'selectLayer']);
    const [state, report, select] = p.webview.posted as unknown as [Extract<ToWebview, { type: 'panelState' }>, Extract<ToWebview, { type: 'report' }>, Extract<ToWebview, { type: 'selectLayer' }>];
    assert.deepEqual(state.state, { sources: [{ path: file, label: 'net' }] });
    assert.equal(report.report.layers.length, 2, 'only the latest of the queued reports');
    assert.equal(select.layer, 'conv2d_1');

    // Live: after ready, each update goes straight out.
    ReportPanel.reportChanged(file, sampleReport());
    ReportPanel.reportChanged(path.join(dir, 'other.json'), sampleReport());
    assert.deepEqual(types(p).slice(3), ['report'], 'only the panel showing that file updates');

    // Hidden: the webview is torn down; updates wait for the next ready, which gets the state again.
    p.setVisible(false);
    panel.update(file, sampleReport({ finishedLayers: 3, status: 'complete' }));
    assert.equal(p.webview.posted.length, 4);
    p.setVisible(true);
    p.receive({ type: 'ready' });
    await tick();
    assert.deepEqual(types(p).slice(4), ['panelState', 'report'], 'content re-sent, the old selection is not');
    panel.dispose();
    assert.equal(ReportPanel.all().length, 0);
  } finally {
    done();
  }
});

test('createOrShow reveals the panel already showing the same reports; compare posts one series per report', async () => {
  const { ctx, dir, done } = setup();
  try {
    const a = path.join(dir, 'a.json');
    const b = path.join(dir, 'b.json');
    writeReport(a, sampleReport());
    writeReport(b, sampleReport({ finishedLayers: 2, status: 'cancelled' }));
    const first = ReportPanel.createOrShow(ctx, [{ path: a, label: 'net-a' }, { path: b, label: 'net-b' }]);
    const again = ReportPanel.createOrShow(ctx, [{ path: b, label: 'net-b' }, { path: a, label: 'net-a' }]);
    assert.equal(again, first);
    assert.equal(mock.panels.length, 1);
    assert.equal(mock.panels[0].revealed, 1);
    assert.equal(mock.panels[0].title, 'Compare: net-a vs net-b');
    await tick(50); // reports load from disk
    mock.panels[0].receive({ type: 'ready' });
    await tick();
    const compare = mock.panels[0].webview.posted.find((m) => (m as ToWebview).type === 'compare') as Extract<ToWebview, { type: 'compare' }>;
    assert.deepEqual(compare.series.map((s) => [s.label, s.report.layers.length]), [['net-a', 3], ['net-b', 2]]);
    first.dispose();
  } finally {
    done();
  }
});

test('panels share one editor group: Beside for the first, the open panel\'s group after; revealed where they are', async () => {
  const { ctx, dir, done } = setup();
  try {
    const a = path.join(dir, 'a.json');
    const b = path.join(dir, 'b.json');
    const first = ReportPanel.createOrShow(ctx, [{ path: a, label: 'net-a' }]);
    assert.equal(mock.panels[0].createdIn, ViewColumn.Beside);
    // The user moved it to the third group: the next panel joins it there, instead of opening a group beside it.
    mock.panels[0].viewColumn = 3;
    ReportPanel.createOrShow(ctx, [{ path: b, label: 'net-b' }]);
    assert.equal(mock.panels[1].createdIn, 3);
    ReportPanel.createOrShow(ctx, [{ path: a, label: 'net-a' }, { path: b, label: 'net-b' }]);
    assert.equal(mock.panels[2].createdIn, 3);
    ReportPanel.createOrShow(ctx, [{ path: a, label: 'net-a' }]);
    assert.deepEqual(mock.panels[0].revealedIn, [undefined], 'an existing panel is revealed in its own group');
    first.reveal();
    assert.deepEqual(mock.panels[0].revealedIn, [undefined, undefined]);
    ReportPanel.all().forEach((x) => x.dispose());
    // None open: Beside again.
    ReportPanel.createOrShow(ctx, [{ path: a, label: 'net-a' }]);
    assert.equal(mock.panels[3].createdIn, ViewColumn.Beside);
    ReportPanel.all().forEach((x) => x.dispose());
  } finally {
    done();
  }
});

test('a single report\'s title adds what sets it apart from its model\'s other reports (the detail hook)', async () => {
  const { ctx, dir, done } = setup();
  try {
    const file = path.join(dir, 'r.json');
    const asked: string[] = [];
    ReportPanel.createOrShow(ctx, [{ path: file, label: 'fashion-cnn' }], { detail: async (f) => (asked.push(f), 'α 2') }, new Map([[file, sampleReport()]]));
    await tick();
    assert.equal(mock.panels[0].title, 'SID: fashion-cnn · α 2');
    assert.deepEqual(asked, [file], 'asked once');
    const panel = ReportPanel.all()[0];
    panel.update(file, sampleReport({ finishedLayers: 2, status: 'running' }));
    panel.update(file, sampleReport({ finishedLayers: 3, status: 'running' }));
    await tick();
    assert.deepEqual(asked, [file, file], 'again when the status changed, not after every layer');
    ReportPanel.all().forEach((x) => x.dispose());
  } finally {
    done();
  }
});

test('stale reports are marked in the title', async () => {
  const { ctx, dir, done } = setup();
  try {
    const file = path.join(dir, 'r.json');
    ReportPanel.createOrShow(ctx, [{ path: file, label: 'net' }], { freshness: async () => 'stale' }, new Map([[file, sampleReport()]]));
    await tick();
    assert.equal(mock.panels[0].title, 'SID: net (stale)');
    ReportPanel.all().forEach((x) => x.dispose());
  } finally {
    done();
  }
});

test('save: asks where, writes text and data-URL exports, refuses malformed ones', async () => {
  const { ctx, dir, done } = setup();
  try {
    const file = path.join(dir, 'r.json');
    const panel = ReportPanel.createOrShow(ctx, [{ path: file, label: 'net' }], { defaultSaveFolder: () => Uri.file(dir) as never });
    const p = mock.panels[0];
    const asked: unknown[] = [];
    mock.answer.saveDialog = (o) => {
      asked.push(o);
      const d = (o as { defaultUri: Uri }).defaultUri;
      return Uri.file(path.join(dir, 'out', path.basename(d.fsPath)));
    };
    p.receive({ type: 'save', filename: 'report.csv', mime: 'text/csv', encoding: 'text', data: 'a,b\n1,2\n' });
    p.receive({ type: 'save', filename: '../../evil/chart.png', mime: 'image/png', encoding: 'dataUrl', data: `data:image/png;base64,${Buffer.from([0x89, 0x50, 0x4e, 0x47]).toString('base64')}` });
    p.receive({ type: 'save', filename: 'x.png', mime: 'image/png', encoding: 'dataUrl', data: 'javascript:alert(1)' });
    p.receive({ type: 'save', filename: 42, mime: 'x', encoding: 'text', data: 'x' });
    await tick(50);
    assert.equal(asked.length, 2, 'malformed requests never reach the dialog');
    assert.deepEqual((asked[0] as { filters: unknown }).filters, { CSV: ['csv'] });
    assert.equal((asked[1] as { defaultUri: Uri }).defaultUri.fsPath, path.join(dir, 'chart.png'), 'the suggested name loses its path');
    assert.equal(Buffer.from(mock.written.get(path.join(dir, 'out', 'report.csv'))!).toString(), 'a,b\n1,2\n');
    assert.deepEqual([...mock.written.get(path.join(dir, 'out', 'chart.png'))!], [0x89, 0x50, 0x4e, 0x47]);
    mock.answer.saveDialog = undefined;
    p.receive({ type: 'save', filename: 'y.json', mime: 'application/json', encoding: 'text', data: '{}' });
    await tick();
    assert.equal(mock.written.size, 2, 'dismissed dialog: nothing written');
    panel.dispose();
  } finally {
    done();
  }
});

test('restore: the serializer reopens the reports named in the webview state; bad state is ignored', async () => {
  const { ctx, dir, done } = setup();
  try {
    const file = path.join(dir, 'r.json');
    writeReport(file, sampleReport());
    assert.deepEqual(sourcesFromState({ panel: { sources: [{ path: file, label: 'net' }, { path: 'relative.json', label: 'x' }, { path: '/etc/passwd', label: 'y' }, 7] } }), [{ path: file, label: 'net' }]);
    assert.deepEqual(sourcesFromState(undefined), []);
    assert.deepEqual(sourcesFromState({ panel: { sources: 'nope' } }), []);

      const context = makeExtensionContext(ROOT, path.join(dir, 'storage'));
    const ext = activate(context as never);
    const restored = window.makeRestoredPanel('infodiscard.report', 'old title');
    await mock.serializers.get('infodiscard.report')!.deserializeWebviewPanel(restored, { layer: 'conv2d_1', panel: { sources: [{ path: file, label: 'net' }] } });
    assert.ok(restored.webview.html.includes('Content-Security-Policy'));
    assert.deepEqual((restored.webview.options as { localResourceRoots: Uri[] }).localResourceRoots.map((u) => u.fsPath), [path.join(ROOT, 'dist')]);
    await tick(50);
    restored.receive({ type: 'ready' });
    await tick();
    const report = restored.webview.posted.find((m) => (m as ToWebview).type === 'report') as Extract<ToWebview, { type: 'report' }>;
    assert.equal(report.report.layers.length, 3);
    assert.equal(restored.title, 'SID: net (model missing)', "the sample report's model file does not exist");
    ReportPanel.all().forEach((x) => x.dispose());
    await ext.dispose();
  } finally {
    done();
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Object boxes

/** A panel on a schema-2 report file, ready. */
async function boxPanel() {
  const env = setup();
  const file = path.join(env.dir, 'v2.json');
  writeReport(file, sampleReportV2());
  const panel = ReportPanel.createOrShow(env.ctx, [{ path: file, label: 'net' }]);
  const p = mock.panels[0];
  await tick(50);
  p.receive({ type: 'ready' });
  await tick();
  return { ...env, file, panel, p };
}

const lastReport = (p: MockWebviewPanel) => (p.webview.posted.filter((m) => (m as ToWebview).type === 'report').at(-1) as Extract<ToWebview, { type: 'report' }>);

test('setRegion: the report file gets the box, its mask and every layer\'s concentration; clearing removes them', async () => {
  const { file, panel, p, dir, done } = await boxPanel();
  try {
    assert.equal(lastReport(p).source, file, 'the report goes with its file');
    const bbox: [number, number, number, number] = [6, 6, 20, 18];
    p.receive({ type: 'setRegion', source: file, image: 0, bbox });
    await tick(50);
    const [w, h] = V2_ORIGINAL_SIZES[0];
    const mask = regionMaskFromBox(bbox, w, h, 28, 28);
    const before = sampleReportV2();
    const after = readReport(file);
    assert.deepEqual(after.images[0].region, { bbox, source: 'panel' });
    assert.deepEqual(after.images[0].regionMask, maskRows(mask, 28, 28));
    assert.deepEqual(after.images[1], JSON.parse(JSON.stringify(before.images[1])), 'the other image is untouched');
    after.layers.forEach((l, i) => {
      const c = concentration(before.layers[i].perImage[0].map, mask, 28, 28);
      assert.equal(l.perImage[0].concentration, c);
      assert.equal(l.perImage[1].concentration, before.layers[i].perImage[1].concentration);
      assert.deepEqual(l.concentration, summarizeConcentration([c, before.layers[i].perImage[1].concentration]));
      assert.deepEqual(l.perImage[0].map, before.layers[i].perImage[0].map, 'SID maps are not rewritten');
    });
    assert.deepEqual(after.settings, JSON.parse(JSON.stringify(before.settings)));
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], 'written atomically (no temp file left)');
    assert.deepEqual(lastReport(p).report.images[0].region, { bbox, source: 'panel' }, 'the panel shows the saved report');
    assert.equal(mock.messages.length, 0);
    assert.ok(mock.log.some((l) => l.includes('object box of image 1 set to [6, 6, 20, 18]')));

    p.receive({ type: 'setRegion', source: file, image: 0, bbox: null });
    await tick(50);
    const cleared = readReport(file);
    assert.equal(cleared.images[0].region, undefined);
    assert.equal(cleared.images[0].regionMask, undefined);
    cleared.layers.forEach((l, i) => {
      assert.equal(l.perImage[0].concentration, null);
      assert.deepEqual(l.concentration, { mean: before.layers[i].perImage[1].concentration, std: 0, images: 1 });
    });
    panel.dispose();
  } finally {
    done();
  }
});

test('setRegion: refused while an analysis writes the report (info message, file untouched, the webview reverted)', async () => {
  const { ctx, file, panel, p, done } = await boxPanel();
  try {
    const original = readFileSync(file, 'utf8');
    const run = ctx.runs.add('net', undefined, file);
    const posted = p.webview.posted.length;
    p.receive({ type: 'setRegion', source: file, image: 0, bbox: [6, 6, 20, 18] });
    await tick(50);
    assert.equal(readFileSync(file, 'utf8'), original);
    assert.deepEqual(mock.messages.map((m) => [m.level, m.message]), [['info', 'infodiscard: the analysis is still writing this report; draw the object box again when it has finished.']]);
    assert.deepEqual(p.webview.posted.slice(posted).map((m) => (m as ToWebview).type), ['report'], 'the report on record is sent again');
    assert.deepEqual(lastReport(p).report.images[0].region, V2_REGIONS[0]);
    run.dispose();

    // A report another process (the CLI) is writing: 'running' on disk and changed just now.
    const running: Report = { ...sampleReportV2(), status: 'running' };
    writeReport(file, running);
    mock.messages.length = 0;
    p.receive({ type: 'setRegion', source: file, image: 0, bbox: [6, 6, 20, 18] });
    await tick(50);
    assert.equal(mock.messages[0]?.level, 'info');
    assert.deepEqual(readReport(file).images[0].region, V2_REGIONS[0]);
    // ... but one left 'running' by a crash long ago can take a box.
    const old = (Date.now() - 10 * 60_000) / 1000;
    utimesSync(file, old, old);
    mock.messages.length = 0;
    p.receive({ type: 'setRegion', source: file, image: 0, bbox: [6, 6, 20, 18] });
    await tick(50);
    assert.deepEqual(mock.messages, []);
    assert.deepEqual(readReport(file).images[0].region, { bbox: [6, 6, 20, 18], source: 'panel' });
    panel.dispose();
  } finally {
    done();
  }
});

test('setRegion: malformed or foreign requests are ignored, impossible boxes refused, schema-1 reports left alone', async () => {
  const { file, panel, p, dir, done } = await boxPanel();
  try {
    const original = readFileSync(file, 'utf8');
    const posted = p.webview.posted.length;
    for (const m of [
      { type: 'setRegion', source: path.join(dir, 'other.json'), image: 0, bbox: [6, 6, 20, 18] },
      { type: 'setRegion', source: file, image: 0.5, bbox: [6, 6, 20, 18] },
      { type: 'setRegion', source: file, image: -1, bbox: [6, 6, 20, 18] },
      { type: 'setRegion', source: file, image: 0, bbox: [6, 6, 20] },
      { type: 'setRegion', source: file, image: 0, bbox: 'x' },
      { type: 'setRegion', source: file, image: 0, bbox: [6, 6, NaN, 18] },
      { type: 'setRegion', image: 0, bbox: [6, 6, 20, 18] },
    ]) p.receive(m);
    await tick(50);
    assert.equal(mock.messages.length, 0, 'ignored without a word');
    assert.equal(p.webview.posted.length, posted);
    for (const [m, why] of [
      [{ type: 'setRegion', source: file, image: 7, bbox: [6, 6, 20, 18] }, /there is no image 8/],
      [{ type: 'setRegion', source: file, image: 0, bbox: [-1, 6, 20, 18] }, /negative x or y/],
      [{ type: 'setRegion', source: file, image: 0, bbox: [60, 6, 20, 18] }, /outside the 56x42 image/],
      [{ type: 'setRegion', source: file, image: 0, bbox: [6, 6, 0.5, 18] }, /selects no model pixel/],
    ] as const) {
      mock.messages.length = 0;
      p.receive(m);
      await tick(50);
      assert.equal(mock.messages[0]?.level, 'error');
      assert.match(mock.messages[0].message, why);
    }
    assert.equal(readFileSync(file, 'utf8'), original, 'nothing written');

    writeReport(file, sampleReport());
    const v1 = readFileSync(file, 'utf8');
    mock.messages.length = 0;
    p.receive({ type: 'setRegion', source: file, image: 0, bbox: [6, 6, 20, 18] });
    await tick(50);
    assert.match(mock.messages[0]?.message ?? '', /schema-1 report/);
    assert.equal(readFileSync(file, 'utf8'), v1);
    panel.dispose();
  } finally {
    done();
  }
});

test('setRegion in a comparison: each series carries its file, and only that file is written', async () => {
  const { ctx, dir, done } = setup();
  try {
    const a = path.join(dir, 'a.json');
    const b = path.join(dir, 'b.json');
    writeReport(a, sampleReportV2());
    writeReport(b, sampleReportV2());
    const panel = ReportPanel.createOrShow(ctx, [{ path: a, label: 'net-a' }, { path: b, label: 'net-b' }]);
    const p = mock.panels[0];
    await tick(50);
    p.receive({ type: 'ready' });
    await tick();
    const compare = p.webview.posted.find((m) => (m as ToWebview).type === 'compare') as Extract<ToWebview, { type: 'compare' }>;
    assert.deepEqual(compare.series.map((s) => s.source), [a, b]);
    p.receive({ type: 'setRegion', source: b, image: 1, bbox: [0, 0, 42, 42] });
    await tick(50);
    assert.deepEqual(readReport(b).images[1].region, { bbox: [0, 0, 42, 42], source: 'panel' });
    assert.deepEqual(readReport(a).images[1].region, V2_REGIONS[1]);
    const latest = p.webview.posted.filter((m) => (m as ToWebview).type === 'compare').at(-1) as Extract<ToWebview, { type: 'compare' }>;
    assert.deepEqual(latest.series[1].report.images[1].region, { bbox: [0, 0, 42, 42], source: 'panel' });
    panel.dispose();
  } finally {
    done();
  }
});
