/**
 * The report panel against the mocked webview: HTML and CSP, the ready handshake (nothing posted before
 * 'ready', the latest content delivered after it, again after a reload), live updates, compare, layer selection,
 * exports through the save dialog, and restore from the webview's saved state.
 */
import { makeExtensionContext, mock, Uri, window, type MockWebviewPanel } from './helpers/vscode-mock';
import { test } from 'node:test';
import { activate } from '../src/extension/main';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeReport } from '../src/engine/reportFile';
import type { ToWebview } from '../src/protocol';
import { Ctx } from '../src/extension/ctx';
import { ReportPanel, sourcesFromState } from '../src/extension/panel';
import { sampleReport } from './fixtures/sample-report';

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
    assert.equal(mock.panels[0].title, 'SID: net-a vs net-b');
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
