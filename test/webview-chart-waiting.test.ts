/**
 * The SID chart card in the real webview (headless Chromium, the panel's page and CSP, as test/extension-webview.test.ts):
 * before the first layer has finished it shows a waiting line with the queued layers and no chart (no 0–1 axis as if
 * there were data); the first finished layer brings the chart. Long ONNX layer names get short axis labels and
 * short labels in the maps' layer picker (full names as tooltips), the report keeping the full names. Needs dist/webview.js (`npm run build`) and /usr/bin/chromium (skipped without it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Report } from '../src/engine/report';
import { openPanel, panelPage, post, webviewBrowser } from './helpers/webviewPage';
import { sampleReport } from './fixtures/sample-report';

const ONNX = ['/layer1/layer1.0/relu_1/Relu_output_0', '/layer1/layer1.1/relu_1/Relu_output_0', '/layer2/layer2.0/relu_1/Relu_output_0'];

/** The sample report with torchvision-style ONNX layer names. */
function onnxReport(finishedLayers: number): Report {
  const r = sampleReport({ finishedLayers, status: finishedLayers === 3 ? 'complete' : 'running' });
  const rename = new Map(sampleReport().requestedLayers.map((n, i) => [n, ONNX[i]]));
  r.requestedLayers = r.requestedLayers.map((n) => rename.get(n) ?? n);
  r.layers = r.layers.map((l) => ({ ...l, name: rename.get(l.name) ?? l.name }));
  return r;
}

test('SID chart card: a waiting line until the first layer, then the chart with short axis labels', { timeout: 120_000 }, async (t) => {
  const chrome = await webviewBrowser(t, 'infodiscard-waiting-');
  if (!chrome) return;
  const { page, problems } = await openPanel(chrome.browser, panelPage(chrome.dir), { width: 1200, height: 900 });
  await page.waitForSelector('.id-empty');

  // A run's report before its first layer: every layer pending.
  await post(page, { type: 'report', report: onnxReport(0) });
  await page.waitForSelector('.id-app[data-rendered="running"]');
  const card = page.locator('section[aria-label="SID per layer"]');
  assert.equal((await card.locator('[data-chart-waiting]').textContent())?.trim(), 'Waiting for the first layer… (3 layers queued)');
  assert.equal(await card.locator('canvas').count(), 0, 'no axes before there is data');

  // The first layer finished: the chart, its axis labels short, the full names in the report.
  await post(page, { type: 'report', report: onnxReport(1) });
  await page.waitForSelector('section[aria-label="SID per layer"] canvas[data-chart="sid"]');
  assert.equal(await card.locator('[data-chart-waiting]').count(), 0);
  const canvas = card.locator('canvas[data-chart="sid"]');
  assert.equal(await canvas.getAttribute('data-points'), '1');
  assert.deepEqual(JSON.parse((await canvas.getAttribute('data-axis-labels')) ?? '[]'), ['layer1.0/relu_1', 'layer1.1/relu_1', 'layer2.0/relu_1']);

  // The maps' layer picker: the short label, the full name as its tooltip.
  await post(page, { type: 'report', report: onnxReport(2) });
  await page.waitForFunction(() => document.querySelectorAll('[aria-label="Layer"] vscode-option, [aria-label="Layer"] option').length === 2);
  const options = await page.locator('[aria-label="Layer"] vscode-option, [aria-label="Layer"] option').evaluateAll((os) => os.map((o) => [o.textContent, o.getAttribute('title')]));
  assert.deepEqual(options, [['1. layer1.0/relu_1', ONNX[0]], ['2. layer1.1/relu_1', ONNX[1]]]);

  // A run cancelled before any layer: no chart either, and it says so.
  await post(page, { type: 'report', report: { ...onnxReport(0), status: 'cancelled' } });
  await page.waitForSelector('.id-app[data-rendered="cancelled"]');
  assert.equal((await card.locator('[data-chart-waiting]').textContent())?.trim(), 'No layer has finished (cancelled; 3 layers not analysed).');
  assert.equal(await card.locator('canvas').count(), 0);
  assert.deepEqual(problems, []);
});
