/**
 * The --html report page, end to end: render a sample report to a file, open it in real headless Chromium and
 * check what a user would see (chart and heatmaps drawn, hostile names shown as text, no script injection, no CSP
 * violations, partial reports, live updates by postMessage, theme switch, exports). Schema 2: RU series and the
 * poor-decoder flag, concentration and baseline charts, RU and baseline maps, the stored object region outlined
 * (read-only: no box drawing on the standalone page), and a schema-1 page without any of it.
 * Needs dist/webview.js (npm test builds first; built here if missing) and /usr/bin/chromium (skipped without it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import type { Report } from '../src/engine/report';
import { jsonForScript, loadWebviewBundle, renderReportHtml } from '../src/report-html/render';
import { layerQuality, sidQuality } from '../src/engine/quality';
import { EVIL_LAYER_NAME, sampleReport, sampleReportV2, sigmaOf } from './fixtures/sample-report';

const ROOT = path.resolve(__dirname, '..');
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'out', 'screenshots');

function bundle(): string {
  if (!existsSync(path.join(ROOT, 'dist', 'webview.js'))) execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  return loadWebviewBundle(path.join(ROOT, 'dist'));
}

test('renderReportHtml: CSP, nonce, escaped JSON', () => {
  const report = sampleReport();
  const html = renderReportHtml(report, 'console.log("</script>")');
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html);
  assert.ok(csp, 'CSP meta tag present');
  const nonce = /'nonce-([A-Za-z0-9]+)'/.exec(csp[1])?.[1];
  assert.ok(nonce && nonce.length >= 16, 'random nonce');
  assert.equal(csp[1], `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src data: blob:`);
  assert.notEqual(renderReportHtml(report, '').match(/'nonce-([A-Za-z0-9]+)'/)?.[1], nonce, 'fresh nonce per page');
  // Only the two real script elements close: the JSON block and the bundle.
  assert.equal(html.match(/<\/script/gi)?.length, 2);
  assert.ok(!html.includes(EVIL_LAYER_NAME), 'hostile layer name never appears raw in the HTML');
  const json = /<script type="application\/json" id="infodiscard-report">([^<]*)<\/script>/.exec(html);
  assert.ok(json, 'report JSON block present and free of "<"');
  assert.deepEqual(JSON.parse(json[1]), JSON.parse(JSON.stringify(report)));
  assert.equal(jsonForScript({ a: '</script><!--\u2028' }), '{"a":"\\u003c/script>\\u003c!--\\u2028"}');
  assert.throws(() => loadWebviewBundle(path.join(os.tmpdir(), 'no-such-dir', 'x', 'y')), /run npm run build/);
});

interface PageWatch {
  problems: string[];
  dialogs: string[];
}

async function openReport(browser: Browser, file: string, report: Report): Promise<{ page: Page; watch: PageWatch }> {
  writeFileSync(file, renderReportHtml(report, bundle()));
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1, acceptDownloads: true });
  const page = await context.newPage();
  const watch: PageWatch = { problems: [], dialogs: [] };
  page.on('dialog', (d) => {
    watch.dialogs.push(`${d.type()}: ${d.message()}`);
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') watch.problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => watch.problems.push(`page error: ${e.message}`));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  // The page must be self-contained: anything but the file itself (and data:/blob:) is a failure.
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url === `file://${file}` || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    watch.problems.push(`network request: ${url}`);
    return route.abort();
  });
  await page.goto(`file://${file}`);
  return { page, watch };
}

/** Distinct colours and pixels differing from the top-left corner, in a canvas. */
async function canvasStats(page: Page, selector: string): Promise<{ distinct: number; nonBackground: number; width: number; height: number }> {
  return page.$eval(selector, (node) => {
    const c = node as HTMLCanvasElement;
    if (c.width === 0 || c.height === 0) return { distinct: 0, nonBackground: 0, width: c.width, height: c.height };
    // Read a copy, so the page's own canvas never sees a readback (Chromium warns after a few).
    const copy = document.createElement('canvas');
    copy.width = c.width;
    copy.height = c.height;
    const ctx = copy.getContext('2d', { willReadFrequently: true })!;
    ctx.drawImage(c, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set<number>();
    let nonBackground = 0;
    for (let i = 0; i < d.length; i += 4) {
      const key = (d[i] << 24) | (d[i + 1] << 16) | (d[i + 2] << 8) | d[i + 3];
      seen.add(key);
      if (Math.abs(d[i] - d[0]) + Math.abs(d[i + 1] - d[1]) + Math.abs(d[i + 2] - d[2]) > 30 && d[i + 3] > 0) nonBackground++;
    }
    return { distinct: seen.size, nonBackground, width: c.width, height: c.height };
  });
}

async function download(page: Page, button: string): Promise<Buffer> {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: button }).click()]);
  const p = await dl.path();
  return readFileSync(p);
}

test('report page in headless Chromium', { timeout: 120_000 }, async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} not found: install Debian's chromium package to run the browser checks`);
    return;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-html-'));
  mkdirSync(SCREENSHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(async () => {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  });

  await t.test('complete report: chart, heatmaps, table, hostile names as text, exports', async () => {
    const report = sampleReport();
    const { page, watch } = await openReport(browser, path.join(dir, 'complete.html'), report);
    await page.waitForSelector('.id-app[data-rendered="complete"]');

    const chart = await canvasStats(page, '.id-chart-box canvas');
    assert.ok(chart.width > 300 && chart.height > 200, `chart canvas sized (${chart.width}x${chart.height})`);
    assert.ok(chart.nonBackground > 500, `chart has drawn pixels (${chart.nonBackground})`);

    const heat = await canvasStats(page, 'canvas.id-heat-canvas');
    assert.ok(heat.width >= 250, `heatmap scaled up (${heat.width}px)`);
    assert.ok(heat.distinct > 50, `heatmap has many colours (${heat.distinct})`);
    assert.equal(await page.locator('.id-thumb canvas').count(), 3, 'one small multiple per layer');
    assert.ok((await canvasStats(page, '.id-legend canvas')).distinct > 50, 'legend bar drawn');

    // Untrusted strings show as literal text and never become markup.
    const names = await page.locator('.id-table td.name').allTextContents();
    assert.deepEqual(names, report.requestedLayers);
    assert.ok(names.includes(EVIL_LAYER_NAME));
    assert.equal(await page.locator('img').count(), 0, 'no <img> element was created');
    assert.equal(await page.locator('.id-model-path').textContent(), report.model.path);
    assert.equal(await page.locator('.id-model-path b').count(), 0);

    // Hover readout matches the map value under the pointer.
    const box = await page.locator('canvas.id-heat-canvas').boundingBox();
    assert.ok(box);
    await page.mouse.move(box.x + (5.5 * box.width) / 28, box.y + (20.5 * box.height) / 28);
    const readout = (await page.locator('.id-readout').textContent()) ?? '';
    const h = report.layers[0].perImage[0].map[20][5];
    assert.equal(readout, `pixel (5, 20): H = ${h.toFixed(3)} nats, sigma = ${sigmaOf(h).toPrecision(3)}`);
    await page.mouse.move(0, 0);

    // Selecting another image or layer redraws the big map.
    const before = await page.$eval('canvas.id-heat-canvas', (c) => (c as HTMLCanvasElement).toDataURL());
    await page.getByRole('combobox', { name: 'Image' }).selectOption('1');
    const afterImage = await page.$eval('canvas.id-heat-canvas', (c) => (c as HTMLCanvasElement).toDataURL());
    assert.notEqual(afterImage, before);
    await page.locator('.id-table tbody tr').nth(1).click();
    assert.equal(await page.getByRole('combobox', { name: 'Layer' }).inputValue(), EVIL_LAYER_NAME);
    assert.equal(await page.locator('.id-table tbody tr.selected td.name').textContent(), EVIL_LAYER_NAME);
    await page.getByRole('combobox', { name: 'Image' }).selectOption('0');
    await page.getByRole('combobox', { name: 'Layer' }).selectOption('conv2d_1');

    // Exports.
    const csv = (await download(page, 'Export CSV')).toString('utf8');
    assert.equal(csv.split('\r\n').filter(Boolean).length, 4);
    assert.ok(csv.includes(EVIL_LAYER_NAME));
    const json = JSON.parse((await download(page, 'Export JSON')).toString('utf8'));
    assert.deepEqual(json.requestedLayers, report.requestedLayers);
    const png = await download(page, 'Export PNG');
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);

    // Schema 1: none of the schema-2 sections, columns or controls.
    assert.deepEqual(await page.locator('canvas[data-chart]').evaluateAll((cs) => cs.map((c) => c.getAttribute('data-chart'))), ['sid']);
    assert.equal(await page.locator('.id-chart-box canvas').count(), 1);
    assert.equal(await page.locator('canvas.id-heat-canvas').count(), 1);
    assert.equal(await page.locator('.id-map, .id-box-hint, .id-box-bar').count(), 0);
    assert.equal(await page.locator('.id-table thead th').count(), 10);
    assert.equal(await page.locator('.id-chart-box').first().locator('..').locator('h2').textContent(), 'SID per layer');
    assert.equal(csv.split('\r\n')[0], 'index,layer,status,kind,output_shape,sid_mean_nats_per_pixel,sid_std,sid_total_nats,constraint_ratio_mean,alpha,steps_mean,stopped_at_max_steps,saturated_mean,seconds,images');

    await page.screenshot({ path: path.join(SCREENSHOTS, 'report.png'), fullPage: true });
    assert.deepEqual(watch.dialogs, [], 'no dialog fired');
    assert.deepEqual(watch.problems, [], 'no console errors, CSP violations or network requests');
    await page.context().close();
  });

  await t.test('partial report (running, 1 of 3 layers) renders, then updates by postMessage', async () => {
    const { page, watch } = await openReport(browser, path.join(dir, 'partial.html'), sampleReport({ finishedLayers: 1 }));
    await page.waitForSelector('.id-app[data-rendered="running"]');
    assert.match((await page.locator('.id-badge').textContent()) ?? '', /running/);
    assert.equal(await page.locator('.id-table tbody tr').count(), 3);
    assert.equal(await page.locator('.id-table tbody tr.pending').count(), 2);
    assert.equal(await page.locator('.id-thumb[disabled]').count(), 2);
    assert.ok((await canvasStats(page, '.id-chart-box canvas')).nonBackground > 200, 'chart drawn with one point');
    assert.ok((await canvasStats(page, 'canvas.id-heat-canvas')).distinct > 50, 'heatmap of the finished layer drawn');
    await page.screenshot({ path: path.join(SCREENSHOTS, 'report-partial.png'), fullPage: true });

    // The VS Code panel pushes full reports as layers finish.
    await page.evaluate((r) => window.postMessage({ type: 'report', report: r }, '*'), sampleReport({ finishedLayers: 2 }) as unknown as Record<string, unknown>);
    await page.waitForFunction(() => document.querySelectorAll('.id-table tbody tr.pending').length === 1);
    await page.evaluate((r) => window.postMessage({ type: 'report', report: r }, '*'), sampleReport() as unknown as Record<string, unknown>);
    await page.waitForSelector('.id-app[data-rendered="complete"]');
    assert.equal(await page.locator('.id-table tbody tr.pending').count(), 0);
    assert.equal(await page.locator('.id-thumb canvas').count(), 3);
    // Garbage messages are ignored.
    await page.evaluate(() => {
      window.postMessage({ type: 'report', report: 42 }, '*');
      window.postMessage('hello', '*');
    });
    await page.waitForTimeout(50);
    assert.equal(await page.locator('.id-app').getAttribute('data-rendered'), 'complete');
    assert.deepEqual(watch.dialogs, []);
    assert.deepEqual(watch.problems, []);
    await page.context().close();
  });

  await t.test('schema-2 report: RU, concentration, baselines, region outline; read-only boxes', async () => {
    const report = sampleReportV2();
    const { page, watch } = await openReport(browser, path.join(dir, 'v2.html'), report);
    await page.waitForSelector('.id-app[data-rendered="complete"]');
    const json = async (selector: string, name: string): Promise<unknown> => JSON.parse((await page.locator(selector).getAttribute(name)) ?? 'null');

    assert.deepEqual(await json('canvas[data-chart="sid"]', 'data-series'), ['SID', 'RU']);
    assert.equal(await page.locator('canvas[data-chart="sid"]').getAttribute('data-points'), '3,3');
    assert.deepEqual(await json('canvas[data-chart="sid"]', 'data-poor-decoder'), ['dense_</script>_2']);
    for (const chart of ['sid', 'concentration', 'baselines']) {
      const stats = await canvasStats(page, `canvas[data-chart="${chart}"]`);
      assert.ok(stats.nonBackground > 500, `${chart} chart drawn (${stats.nonBackground})`);
    }
    assert.deepEqual(await json('canvas[data-chart="concentration"]', 'data-values'), [report.layers.map((l) => l.concentration!.mean), report.layers.map((l) => l.perImage[0].concentration)]);
    assert.equal(await page.locator('canvas[data-chart="baselines"]').getAttribute('data-points'), '3,2,1');

    // The maps of layer 1: SID, RU, gradient norm, Grad-CAM (no CAM there), all drawn.
    assert.deepEqual(await page.locator('canvas.id-heat-canvas').evaluateAll((cs) => cs.map((c) => c.getAttribute('data-map'))), ['sid', 'ru', 'gradNorm', 'gradCam']);
    for (const key of ['ru', 'gradNorm', 'gradCam']) {
      assert.ok((await canvasStats(page, `canvas[data-map="${key}"]`)).distinct > 20, `${key} map drawn`);
    }
    // The stored region is outlined in white (viridis has no colour that light). One readback of the SID canvas.
    assert.deepEqual(await json('canvas[data-map="sid"]', 'data-region'), report.images[0].region!.bbox);
    const sid = await page.$eval('canvas[data-map="sid"]', (node) => {
      const c = node as HTMLCanvasElement;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      const seen = new Set<number>();
      let white = 0;
      for (let i = 0; i < d.length; i += 4) {
        seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        if (d[i] > 235 && d[i + 1] > 235 && d[i + 2] > 235) white++;
      }
      return { distinct: seen.size, white };
    });
    assert.ok(sid.distinct > 20, 'SID map drawn');
    assert.ok(sid.white > 100, `region outline drawn (${sid.white} white pixels)`);
    assert.match((await page.locator('.id-box-hint').textContent()) ?? '', /Outlined: the object region \(from the boxes file\)/);

    // Read-only: the map takes no focus and a drag changes nothing.
    assert.equal(await page.locator('canvas[data-map="sid"]').getAttribute('tabindex'), null);
    assert.equal(await page.getByRole('button', { name: 'Clear box' }).count(), 0);
    const box = await page.locator('canvas[data-map="sid"]').boundingBox();
    assert.ok(box);
    await page.mouse.move(box.x + 20, box.y + 20);
    await page.mouse.down();
    await page.mouse.move(box.x + 120, box.y + 150, { steps: 4 });
    await page.mouse.up();
    assert.deepEqual(await json('canvas[data-chart="concentration"]', 'data-values'), [report.layers.map((l) => l.concentration!.mean), report.layers.map((l) => l.perImage[0].concentration)]);
    assert.deepEqual(await json('canvas[data-map="sid"]', 'data-region'), report.images[0].region!.bbox);

    // Table and CSV carry RU, the decoder PSNR (flagged) and concentration.
    const heads = await page.locator('.id-table thead th').allTextContents();
    assert.deepEqual(heads.slice(4, 8), ['SID mean ± std', 'RU mean ± std', 'Decoder PSNR (dB)', 'Concentration']);
    assert.match((await page.locator('.id-table tbody tr').nth(2).textContent()) ?? '', /⚠/);
    const csv = (await download(page, 'Export CSV')).toString('utf8').split('\r\n');
    assert.ok(csv[0].endsWith(',ru_mean_nats_per_pixel,ru_std,ru_total_nats,decoder_psnr_db,concentration_mean_nats_per_pixel,concentration_std,concentration_images,gradnorm_magnitude_mean,gradcam_magnitude_mean,cam_magnitude_mean'));
    assert.equal(csv[3].split(',').at(-1), '', 'the dense layer has no CAM');

    await page.screenshot({ path: path.join(SCREENSHOTS, 'report-v2.png'), fullPage: true });
    assert.deepEqual(watch.dialogs, []);
    assert.deepEqual(watch.problems, []);
    await page.context().close();
  });

  await t.test('malformed schema-2 fields do not break the page', async () => {
    const report = sampleReportV2() as unknown as Record<string, any>;
    report.images[0].region = { bbox: ['a', 1, 2, 3], source: '<b>x</b>' };
    report.images[0].regionMask = 'nope';
    report.images[1].region = 'x';
    report.layers[0].ru = 'x';
    report.layers[0].concentration = 'high';
    report.layers[0].baselines = { gradNorm: 5, gradCam: [1], cam: null };
    report.layers[0].perImage[0].ruMap = 'nope';
    report.layers[0].perImage[0].baselines = { gradNorm: [[1, 'x'], 7], gradCam: 'y', magnitude: null, targetClass: '<i>' };
    report.layers[0].perImage[0].ru = 3;
    report.layers[0].perImage[0].concentration = '0.5';
    report.layers[1].ru.decoder = null;
    const { page, watch } = await openReport(browser, path.join(dir, 'malformed.html'), report as unknown as Report);
    await page.waitForSelector('.id-app[data-rendered="complete"]');
    assert.equal(await page.locator('canvas[data-map="sid"]').count(), 1);
    assert.equal(await page.locator('i').count() + await page.locator('b').filter({ hasText: /^x$/ }).count(), 0, 'no markup from the report');
    assert.deepEqual(watch.dialogs, []);
    assert.deepEqual(watch.problems, []);
    await page.context().close();
  });

  await t.test('schema 3: flagged values are hatched with the reason, bounds print with "≥", the CSV says so', async () => {
    const report = sampleReport();
    report.schemaVersion = 3;
    const settings = report.settings;
    const alpha = settings.alpha;
    for (const [i, layer] of report.layers.entries()) {
      for (const p of layer.perImage) {
        // Layer 0 saturated (every pixel at sigma_max, ratio short of alpha), the others measured.
        if (i === 0) Object.assign(p, { saturated: p.map.length * p.map[0].length, constraintRatio: 0.8 * alpha, constraintRatioSe: 0.001 });
        else Object.assign(p, { constraintRatio: alpha, constraintRatioSe: 0.001, stopReason: 'converged' });
        p.quality = sidQuality(p, settings);
      }
      layer.quality = layerQuality(layer.perImage.map((p) => p.quality));
    }
    const { page, watch } = await openReport(browser, path.join(dir, 'quality.html'), report);
    await page.waitForSelector('.id-app[data-rendered="complete"]');
    const first = page.locator('.id-table tbody tr').nth(0).locator('td').nth(4);
    assert.match((await first.textContent()) ?? '', /^≥-?\d+\.\d{3} ± .* ⚠$/);
    assert.equal(await first.getAttribute('data-quality'), 'saturated');
    assert.match((await first.getAttribute('class')) ?? '', /flagged/);
    assert.match((await first.getAttribute('title')) ?? '', /saturated: .*lower bound.*--sigma-max/);
    const second = page.locator('.id-table tbody tr').nth(1).locator('td').nth(4);
    assert.doesNotMatch((await second.textContent()) ?? '', /≥|⚠/);
    assert.equal(await second.getAttribute('data-quality'), 'ok');
    // The selected (first) layer's facts: the value as a bound, and the verdict with its reason.
    assert.match((await page.locator('.id-facts').textContent()) ?? '', /SID mean≥.*nats\/pixel ⚠.*Qualitysaturated \(a lower bound\)/);
    assert.equal(await page.locator('.id-thumb.flagged').count(), 1);
    assert.match((await page.locator('.id-banner.quality').textContent()) ?? '', /^⚠ 1 of 3 layers flagged: 1 saturated \(SID shown as a lower bound "≥"\), hover/);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'report-quality.png'), fullPage: true });
    const csv = (await download(page, 'Export CSV')).toString('utf8').split('\r\n');
    assert.match(csv[0], /,sid_quality,sid_is_lower_bound,sid_quality_reason$/);
    assert.match(csv[1], /,saturated,true,/);
    assert.deepEqual(watch.problems, []);
    await page.context().close();
  });

  await t.test('a skipped layer: its row and tile say skipped and why; the header counts it; the run is complete', async () => {
    const report = sampleReport({ finishedLayers: 3, status: 'complete' });
    const skipped = report.layers.splice(1, 1)[0].name;
    report.skippedLayers = [{ name: skipped, reason: 'its output does not change when the input changes (delta_f^2 = 0), so SID is undefined' }];
    const { page, watch } = await openReport(browser, path.join(dir, 'skipped.html'), report);
    await page.waitForSelector('.id-app[data-rendered="complete"]');
    assert.match((await page.locator('td.skipped').textContent()) ?? '', /^skipped: its output does not change .*delta_f\^2 = 0/);
    assert.equal(await page.locator('.id-thumb .id-pending').filter({ hasText: /^skipped$/ }).count(), 1);
    assert.match((await page.locator('.id-meta').textContent()) ?? '', /2 of 3, 1 skipped/);
    assert.equal(await page.locator('.id-badge').textContent(), 'complete');
    assert.deepEqual(watch.problems, []);
    await page.context().close();
  });

  await t.test('failed report shows the error as text; theme switch re-renders the chart', async () => {
    const error = '<script>alert(2)</script> out of memory';
    const { page, watch } = await openReport(browser, path.join(dir, 'failed.html'), sampleReport({ finishedLayers: 2, status: 'failed', error }));
    await page.waitForSelector('.id-app[data-rendered="failed"]');
    assert.equal(await page.locator('.id-banner span').textContent(), error);
    // The chart canvas is read through a fresh 1×1 copy each time: repeated
    // getImageData on the chart's own canvas makes Chromium log a
    // willReadFrequently performance warning, which the watch counts as a problem.
    const corner = (): Promise<number[]> => page.$eval('.id-chart-box canvas', (c) => {
      const probe = document.createElement('canvas').getContext('2d', { willReadFrequently: true })!;
      probe.drawImage(c as HTMLCanvasElement, 2, 2, 1, 1, 0, 0, 1, 1);
      return [...probe.getImageData(0, 0, 1, 1).data];
    });
    assert.deepEqual(await corner(), [255, 255, 255, 255], 'light fallback background');
    await page.evaluate(() => {
      const s = document.documentElement.style;
      s.setProperty('--vscode-editor-background', '#1e1e1e');
      s.setProperty('--vscode-foreground', '#cccccc');
      s.setProperty('--vscode-descriptionForeground', '#9d9d9d');
      s.setProperty('--vscode-panel-border', '#3c3c3c');
      s.setProperty('--vscode-editorWidget-background', '#252526');
      s.setProperty('--vscode-list-inactiveSelectionBackground', '#37373d');
      s.setProperty('--vscode-list-hoverBackground', '#2a2d2e');
      s.setProperty('--vscode-button-secondaryBackground', '#3a3d41');
      s.setProperty('--vscode-button-secondaryForeground', '#cccccc');
      s.setProperty('--vscode-dropdown-background', '#3c3c3c');
      s.setProperty('--vscode-dropdown-foreground', '#cccccc');
      s.setProperty('--vscode-charts-blue', '#3794ff');
      document.body.classList.add('vscode-dark');
    });
    await page.waitForFunction(() => {
      const c = document.querySelector('.id-chart-box canvas') as HTMLCanvasElement | null;
      if (!c) return false;
      const probe = document.createElement('canvas').getContext('2d', { willReadFrequently: true })!;
      probe.drawImage(c, 2, 2, 1, 1, 0, 0, 1, 1);
      const d = probe.getImageData(0, 0, 1, 1).data;
      return d[0] === 30 && d[1] === 30 && d[2] === 30;
    });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'report-dark-failed.png'), fullPage: true });
    assert.deepEqual(watch.dialogs, []);
    assert.deepEqual(watch.problems, []);
    await page.context().close();
  });
});
