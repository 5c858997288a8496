/**
 * The report UI as the VS Code panel runs it, in headless Chromium: the page the panel builds (CSP with a nonce,
 * bundle loaded by URL) with a stub acquireVsCodeApi. Checks the 'ready' handshake, 'compare' (one chart series
 * per report, details for the picked one), 'selectLayer', state saved for restore, exports posted to the host,
 * @vscode-elements controls, and no CSP violations or console errors.
 * Needs dist/webview.js and /usr/bin/chromium (skipped without it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import type { Page } from 'playwright-core';
import type { Report } from '../src/engine/report';
import type { ToWebview } from '../src/protocol';
import { makeNonce, reportHtmlDocument } from '../src/report-html/render';
import { EVIL_LAYER_NAME, sampleReport } from './fixtures/sample-report';

const ROOT = path.resolve(__dirname, '..');
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'out', 'screenshots');

function panelPage(dir: string): string {
  const bundle = path.join(ROOT, 'dist', 'webview.js');
  if (!existsSync(bundle)) execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const nonce = makeNonce();
  // The same document and CSP as src/extension/panel.ts builds (file: stands in for webview.cspSource).
  const html = reportHtmlDocument({
    title: 'infodiscard report',
    nonce,
    csp: `default-src 'none'; img-src file: data: blob:; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}'`,
    script: { src: pathToFileURL(bundle).toString() },
  });
  const file = path.join(dir, 'panel.html');
  writeFileSync(file, html);
  return file;
}

async function post(page: Page, message: ToWebview): Promise<void> {
  await page.evaluate((m) => window.postMessage(m, '*'), message as unknown as Record<string, unknown>);
}

const hostPosted = (page: Page) => page.evaluate(() => (window as unknown as { __posted: { type: string }[] }).__posted);
const hostState = (page: Page) => page.evaluate(() => (window as unknown as { __state: Record<string, unknown> }).__state);

function otherModel(): Report {
  const r = sampleReport({ finishedLayers: 2, status: 'cancelled' });
  r.model = { ...r.model, path: '/models/net-b/model.json' };
  r.layers = r.layers.map((l) => ({ ...l, sid: { ...l.sid, mean: l.sid.mean + 0.4 } }));
  return r;
}

test('report UI inside a VS Code webview', { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} not found`);
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-webview-'));
  mkdirSync(SCREENSHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'] });
  t.after(async () => {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const file = panelPage(dir);
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  // A string, not a function: tsx's transform would add helper calls the page does not have.
  await page.addInitScript({
    content: `
      window.__posted = [];
      window.__state = undefined;
      window.acquireVsCodeApi = function () {
        return {
          postMessage: function (m) { window.__posted.push(m); },
          getState: function () { return window.__state; },
          setState: function (s) { window.__state = s; },
        };
      };
      document.addEventListener('securitypolicyviolation', function (e) { console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI); });
    `,
  });
  await page.goto(pathToFileURL(file).toString());

  await t.test('says ready once and waits', async () => {
    await page.waitForFunction(() => (window as unknown as { __posted: unknown[] }).__posted.length > 0);
    assert.deepEqual(await hostPosted(page), [{ type: 'ready' }]);
    assert.match((await page.locator('.id-empty').textContent()) ?? '', /Waiting for a report/);
  });

  await t.test('compare: one chart series per report, details for the picked one, state kept for restore', async () => {
    const sources = [{ path: '/r/a.json', label: 'net-a' }, { path: '/r/b.json', label: 'net-b' }];
    await post(page, { type: 'panelState', state: { sources } });
    await post(page, { type: 'compare', series: [{ label: 'net-a', report: sampleReport() }, { label: 'net-b', report: otherModel() }] });
    await page.waitForSelector('.id-app[data-rendered="complete"]');
    assert.match((await page.locator('.id-chart-box').locator('..').locator('h2').textContent()) ?? '', /SID per layer, 2 models/);
    const chartLabels = await page.locator('.id-chart-box canvas').getAttribute('aria-label');
    assert.match(chartLabels ?? '', /one line per model/);
    const picker = page.locator('vscode-single-select[aria-label="Details for"]');
    assert.equal(await picker.count(), 1, 'series picker is a vscode-single-select');
    assert.deepEqual(await picker.locator('vscode-option').allTextContents(), ['net-a', 'net-b']);
    assert.equal(await page.locator('.id-model-path').textContent(), sampleReport().model.path);
    assert.deepEqual((await hostState(page)).panel, { sources }, 'panel state saved with setState');

    await picker.evaluate((el) => {
      (el as HTMLElement & { value: string }).value = '1';
      el.dispatchEvent(new Event('change'));
    });
    await page.waitForSelector('.id-app[data-rendered="cancelled"]');
    assert.equal(await page.locator('.id-model-path').textContent(), '/models/net-b/model.json');
    assert.equal((await hostState(page)).seriesIndex, 1);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'panel-compare.png'), fullPage: true });
  });

  await t.test('selectLayer picks the layer in the maps and table, even a hostile name', async () => {
    await post(page, { type: 'selectLayer', layer: EVIL_LAYER_NAME });
    await page.waitForFunction((name) => document.querySelector('.id-table tbody tr.selected td.name')?.textContent === name, EVIL_LAYER_NAME);
    // The component reads its options when they are slotted (asynchronously).
    await page.waitForFunction((name) => (document.querySelector('vscode-single-select[aria-label="Layer"]') as HTMLElement & { value: string } | null)?.value === name, EVIL_LAYER_NAME);
    assert.equal((await hostState(page)).layer, EVIL_LAYER_NAME);
    assert.equal(await page.locator('img').count(), 0);
    // A layer only the other report has: the details switch to it.
    await post(page, { type: 'selectLayer', layer: 'dense_</script>_2' });
    await page.waitForFunction(() => document.querySelector('.id-table tbody tr.selected td.name')?.textContent === 'dense_</script>_2');
    assert.equal(await page.locator('.id-model-path').textContent(), sampleReport().model.path);
  });

  await t.test('single report and exports: vscode-buttons post save requests to the host', async () => {
    await post(page, { type: 'report', report: sampleReport() });
    await page.waitForFunction(() => !document.querySelector('vscode-single-select[aria-label="Details for"]'));
    const buttons = page.locator('vscode-button');
    assert.deepEqual((await buttons.allTextContents()).map((s) => s.trim()), ['Export JSON', 'Export PNG', 'Export CSV']);
    await page.locator('vscode-button', { hasText: 'Export CSV' }).click();
    await page.locator('vscode-button', { hasText: 'Export PNG' }).click();
    const saves = (await hostPosted(page)).filter((m) => m.type === 'save') as unknown as { filename: string; mime: string; encoding: string; data: string }[];
    assert.equal(saves.length, 2);
    assert.equal(saves[0].mime, 'text/csv');
    assert.ok(saves[0].data.includes(EVIL_LAYER_NAME));
    assert.equal(saves[1].encoding, 'dataUrl');
    assert.match(saves[1].data, /^data:image\/png;base64,/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'panel-report.png'), fullPage: true });
  });

  await t.test('a reloaded page restores its selection from the saved state', async () => {
    const state = await hostState(page);
    await page.evaluate((s) => sessionStorage.setItem('state', JSON.stringify(s)), state);
    await page.addInitScript({ content: "const saved = sessionStorage.getItem('state'); if (saved) window.__state = JSON.parse(saved);" });
    await page.reload();
    await post(page, { type: 'report', report: sampleReport() });
    await page.waitForSelector('.id-app[data-rendered="complete"]');
    assert.equal(await page.locator('.id-table tbody tr.selected td.name').textContent(), 'dense_</script>_2');
    assert.deepEqual((await hostState(page)).panel, state.panel, 'the panel state survives the reload');
  });

  assert.deepEqual(problems, [], 'no console errors, CSP violations or dialogs');
});
