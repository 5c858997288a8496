/**
 * The report UI as the VS Code panel runs it, in headless Chromium: the page the panel builds (CSP with a nonce,
 * bundle loaded by URL) with a stub acquireVsCodeApi. Checks the 'ready' handshake, 'compare' (one chart series
 * per report, details for the picked one), 'selectLayer', state saved for restore, exports posted to the host,
 * @vscode-elements controls, and no CSP violations or console errors.
 * Schema 2: the RU series and the poor-decoder flag, the concentration and baseline charts, the RU and baseline
 * maps, object boxes drawn with the mouse and the keyboard (concentration recomputed at once, equal to the pure
 * functions of src/engine/concentration.ts; 'setRegion' posted with the box in original-image pixels), and that a
 * schema-1 report shows none of it.
 * Needs dist/webview.js and /usr/bin/chromium (skipped without it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { concentration, modelRectToBox, regionMaskFromBox, summarizeConcentration } from '../src/engine/concentration';
import type { Report } from '../src/engine/report';
import type { FromWebview } from '../src/protocol';
import { openPanel, panelPage, post, postAndRender, webviewBrowser } from './helpers/webviewPage';
import { EVIL_LAYER_NAME, sampleReport, sampleReportV2, V2_ORIGINAL_SIZES } from './fixtures/sample-report';

const ROOT = path.resolve(__dirname, '..');
const SCREENSHOTS = path.join(ROOT, 'out', 'screenshots');

const hostPosted = (page: Page) => page.evaluate(() => (window as unknown as { __posted: { type: string }[] }).__posted);
const hostState = (page: Page) => page.evaluate(() => (window as unknown as { __state: Record<string, unknown> }).__state);

function otherModel(): Report {
  const r = sampleReport({ finishedLayers: 2, status: 'cancelled' });
  r.model = { ...r.model, path: '/models/net-b/model.json' };
  r.layers = r.layers.map((l) => ({ ...l, sid: { ...l.sid, mean: l.sid.mean + 0.4 } }));
  return r;
}

test('report UI inside a VS Code webview', { timeout: 120_000 }, async (t) => {
  const chrome = await webviewBrowser(t, 'infodiscard-webview-');
  if (!chrome) return;
  const { browser, dir } = chrome;
  mkdirSync(SCREENSHOTS, { recursive: true });
  const { page, problems } = await openPanel(browser, panelPage(dir));

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

  await t.test('schema 3: the preprocessing chip with its source, and "Edit preprocessing…" asks the extension', async () => {
    const report = sampleReport();
    report.settings = {
      ...report.settings,
      inputRange: [0, 255],
      preprocessing: { preset: '[0,255]', inputRange: [0, 255], normalize: null, channelOrder: 'rgb', resize: 'stretch', alpha: { mode: 'composite' }, source: 'user (recommended by the check)' },
    };
    await post(page, { type: 'report', report, source: '/r/keras.json' });
    await page.waitForSelector('.id-preprocessing');
    assert.equal(await page.locator('.id-preprocessing').textContent(), 'preprocessing0–255');
    assert.match((await page.locator('.id-preprocessing').getAttribute('title')) ?? '', /^source: user \(recommended by the check\) · resize: stretch$/);
    assert.equal(await page.locator('.id-settings .id-chip b', { hasText: /^input$/ }).count(), 0, 'no separate input chip');
    await page.locator('.id-header').screenshot({ path: path.join(SCREENSHOTS, 'panel-preprocessing-chip.png') });
    await page.locator('.id-preprocessing-row vscode-button, .id-preprocessing-row button').first().click();
    const posted = (await hostPosted(page)) as unknown as FromWebview[];
    assert.deepEqual(posted.filter((m) => m.type === 'editPreprocessing'), [{ type: 'editPreprocessing', source: '/r/keras.json' }]);
  });

  assert.deepEqual(problems, [], 'no console errors, CSP violations or dialogs');
});

// ---------------------------------------------------------------------------------------------------------------
// Schema 2

const SOURCE = '/reports/fashion-cnn-v2.json';
const attr = async (page: Page, selector: string, name: string): Promise<unknown> => JSON.parse((await page.locator(selector).getAttribute(name)) ?? 'null');
const mapKeys = (page: Page) => page.locator('canvas.id-heat-canvas').evaluateAll((cs) => cs.map((c) => c.getAttribute('data-map')));
const setRegions = async (page: Page) => ((await hostPosted(page)) as unknown as FromWebview[]).filter((m): m is Extract<FromWebview, { type: 'setRegion' }> => m.type === 'setRegion');

/** Client coordinates of the centre of map cell (x, y) on the SID canvas. */
async function cellPoint(page: Page, x: number, y: number): Promise<{ x: number; y: number }> {
  await page.locator('canvas[data-map="sid"]').scrollIntoViewIfNeeded();
  const box = await page.locator('canvas[data-map="sid"]').boundingBox();
  assert.ok(box);
  return { x: box.x + ((x + 0.5) * box.width) / 28, y: box.y + ((y + 0.5) * box.height) / 28 };
}

async function selectIn(page: Page, label: string, value: string): Promise<void> {
  await page.locator(`vscode-single-select[aria-label="${label}"]`).evaluate((el, v) => {
    (el as HTMLElement & { value: string }).value = v;
    el.dispatchEvent(new Event('change'));
  }, value);
}

/** What the concentration chart should show for image 0 under `bbox`: per layer, [the mean over images, image 0]. */
function expectedConcentration(report: Report, bbox: number[] | null): [(number | null)[], (number | null)[]] {
  const [w, h] = V2_ORIGINAL_SIZES[0];
  const mask = bbox ? regionMaskFromBox(bbox, w, h, 28, 28) : null;
  const image0 = report.layers.map((l) => (mask ? concentration(l.perImage[0].map, mask, 28, 28) : null));
  const means = report.layers.map((l, i) => summarizeConcentration([image0[i], l.perImage[1].concentration])?.mean ?? null);
  return [means, image0];
}

test('schema-2 report inside a VS Code webview: RU, baselines, object boxes', { timeout: 120_000 }, async (t) => {
  const chrome = await webviewBrowser(t, 'infodiscard-webview2-');
  if (!chrome) return;
  const { browser, dir } = chrome;
  mkdirSync(SCREENSHOTS, { recursive: true });
  const { page, problems } = await openPanel(browser, panelPage(dir));
  await page.waitForFunction(() => (window as unknown as { __posted: unknown[] }).__posted.length > 0);
  const report = sampleReportV2();
  await post(page, { type: 'report', report, source: SOURCE });
  await page.waitForSelector('.id-app[data-rendered="complete"]');

  await t.test('charts: RU series beside SID, poor decoder flagged, concentration and log-scale baselines', async () => {
    assert.deepEqual(await attr(page, 'canvas[data-chart="sid"]', 'data-series'), ['SID', 'RU']);
    assert.equal(await page.locator('canvas[data-chart="sid"]').getAttribute('data-points'), '3,3');
    assert.deepEqual(await attr(page, 'canvas[data-chart="sid"]', 'data-poor-decoder'), ['dense_</script>_2'], 'only the layer whose decoder PSNR is below 15 dB');
    assert.match((await page.locator('.id-chart-box').first().locator('..').locator('h2').textContent()) ?? '', /^SID and RU per layer$/);
    assert.deepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-series'), ['mean over images with a box', 'image 1']);
    assert.deepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-values'), [report.layers.map((l) => l.concentration!.mean), report.layers.map((l) => l.perImage[0].concentration)]);
    assert.deepEqual(await attr(page, 'canvas[data-chart="baselines"]', 'data-series'), ['gradient norm', 'Grad-CAM', 'CAM']);
    assert.equal(await page.locator('canvas[data-chart="baselines"]').getAttribute('data-points'), '3,2,1', 'Grad-CAM has no dense layer, CAM only the GAP input');
    assert.equal(await page.locator('canvas[data-chart="baselines"]').getAttribute('data-scale'), 'logarithmic');
    const ruCell = page.locator('.id-table tbody tr').nth(2).locator('td.warn[title*="decoder"]').first();
    assert.match((await ruCell.getAttribute('title')) ?? '', /decoder reconstructs poorly .*RU is not trustworthy here/);
  });

  await t.test('maps: SID, RU and the baselines the layer has, side by side, same size, each with a legend', async () => {
    assert.deepEqual(await mapKeys(page), ['sid', 'ru', 'gradNorm', 'gradCam']);
    const sizes = await page.locator('canvas.id-heat-canvas').evaluateAll((cs) => cs.map((c) => `${(c as HTMLCanvasElement).style.width}x${(c as HTMLCanvasElement).style.height}`));
    assert.equal(new Set(sizes).size, 1, `same size (${sizes.join(', ')})`);
    assert.equal(await page.locator('.id-map .id-legend canvas').count(), 4, 'one legend per map');
    const colours = await page.locator('canvas.id-heat-canvas').evaluateAll((cs) => cs.map((c) => {
      const k = c as HTMLCanvasElement;
      const d = k.getContext('2d')!.getImageData(0, 0, k.width, k.height).data;
      const seen = new Set<number>();
      for (let i = 0; i < d.length; i += 4) seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      return seen.size;
    }));
    for (const n of colours) assert.ok(n > 20, `every map drawn (${colours.join(', ')} colours)`);
    assert.deepEqual(await attr(page, 'canvas[data-map="sid"]', 'data-region'), report.images[0].region!.bbox, 'stored region outlined');

    await selectIn(page, 'Layer', EVIL_LAYER_NAME);
    await page.waitForFunction(() => document.querySelectorAll('canvas.id-heat-canvas').length === 5);
    assert.deepEqual(await mapKeys(page), ['sid', 'ru', 'gradNorm', 'gradCam', 'cam']);
    const p = await cellPoint(page, 5, 20);
    await page.mouse.move(p.x, p.y);
    const h = report.layers[1].perImage[0].map[20][5];
    const ru = report.layers[1].perImage[0].ruMap![20][5];
    assert.match((await page.locator('.id-readout').textContent()) ?? '', new RegExp(`^pixel \\(5, 20\\): H = ${h.toFixed(3)} nats, sigma = [^;]+; RU Ĥ = ${ru.toFixed(3).replace('.', '\\.')} nats; gradient norm = .*; CAM = `));
    await page.mouse.move(0, 0);
    await selectIn(page, 'Layer', 'dense_</script>_2');
    await page.waitForFunction(() => document.querySelectorAll('canvas.id-heat-canvas').length === 3);
    assert.deepEqual(await mapKeys(page), ['sid', 'ru', 'gradNorm']);
    assert.match((await page.locator('.id-facts dd.warn').textContent()) ?? '', /11\.3 dB ⚠/);
    await selectIn(page, 'Layer', 'conv2d_1');
    await page.waitForFunction(() => document.querySelectorAll('canvas.id-heat-canvas').length === 4);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'panel-v2.png'), fullPage: true });
  });

  const committed = modelRectToBox(3, 4, 13, 16, V2_ORIGINAL_SIZES[0][0], V2_ORIGINAL_SIZES[0][1], 28, 28);

  await t.test('dragging a box recomputes concentration at once and posts setRegion in original-image pixels', async () => {
    assert.deepEqual(committed, [6, 6, 20, 18], 'cells 3..12 x 4..15 of a 56x42 image stretched to 28x28');
    const a = await cellPoint(page, 3, 4);
    const mid = await cellPoint(page, 8, 9);
    const b = await cellPoint(page, 12, 15);
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move(mid.x, mid.y, { steps: 3 });
    // Live, before the button is released.
    const live = modelRectToBox(3, 4, 9, 10, 56, 42, 28, 28);
    assert.deepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-values'), expectedConcentration(report, live));
    await page.mouse.move(b.x, b.y, { steps: 3 });
    await page.mouse.up();
    assert.deepEqual(await setRegions(page), [{ type: 'setRegion', source: SOURCE, image: 0, bbox: committed }]);
    assert.deepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-values'), expectedConcentration(report, committed));
    assert.deepEqual(await attr(page, 'canvas[data-map="sid"]', 'data-region'), committed);
    assert.match((await page.locator('.id-box-row').textContent()) ?? '', /Box x 6, y 6, 20 × 18 px \(original image\), drawn in the panel/);
    const c0 = expectedConcentration(report, committed)[1][0]!;
    assert.ok((await page.locator('.id-facts').textContent())?.includes(`${c0.toFixed(3)} nats/pixel`), 'the facts show the new value');
    await page.mouse.move(0, 0);
  });

  await t.test('Escape cancels a drag: nothing posted, the values come back', async () => {
    const before = await attr(page, 'canvas[data-chart="concentration"]', 'data-values');
    const a = await cellPoint(page, 18, 18);
    const b = await cellPoint(page, 25, 26);
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move(b.x, b.y, { steps: 4 });
    assert.notDeepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-values'), before, 'the drag previews');
    await page.keyboard.press('Escape');
    await page.mouse.up();
    assert.deepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-values'), before);
    assert.equal((await setRegions(page)).length, 1);
    assert.deepEqual(await attr(page, 'canvas[data-map="sid"]', 'data-region'), committed);
    // A click without a drag is not a box either.
    await page.mouse.click(a.x, a.y);
    assert.equal((await setRegions(page)).length, 1);
    await page.mouse.move(0, 0);
  });

  await t.test('keyboard: arrows move, Enter starts and finishes a box, Delete clears it', async () => {
    await page.locator('canvas[data-map="sid"]').focus();
    await page.keyboard.press('Enter'); // starts at the centre cell (14, 14)
    for (let i = 0; i < 3; i++) await page.keyboard.press('ArrowRight');
    for (let i = 0; i < 2; i++) await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    const box = modelRectToBox(14, 14, 18, 17, 56, 42, 28, 28);
    assert.deepEqual((await setRegions(page)).at(-1), { type: 'setRegion', source: SOURCE, image: 0, bbox: box });
    assert.deepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-values'), expectedConcentration(report, box));
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('data-map')), 'sid', 'focus stays on the map');
    await page.keyboard.press('Delete');
    assert.deepEqual((await setRegions(page)).at(-1), { type: 'setRegion', source: SOURCE, image: 0, bbox: null });
    assert.deepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-values'), expectedConcentration(report, null));
    assert.equal(await page.locator('canvas[data-map="sid"]').getAttribute('data-region'), null);
  });

  await t.test('Clear box button, and the host reverting the box with the report on record', async () => {
    const a = await cellPoint(page, 3, 4);
    const b = await cellPoint(page, 12, 15);
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move(b.x, b.y, { steps: 3 });
    await page.mouse.up();
    await page.locator('vscode-button', { hasText: 'Clear box' }).click();
    assert.deepEqual((await setRegions(page)).slice(-2).map((m) => m.bbox), [committed, null]);
    // The host refused (e.g. an analysis is writing the file): it re-sends the report, which wins.
    await post(page, { type: 'report', report: sampleReportV2(), source: SOURCE });
    await page.waitForFunction((bbox) => document.querySelector('canvas[data-map="sid"]')?.getAttribute('data-region') === JSON.stringify(bbox), report.images[0].region!.bbox);
    assert.deepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-values'), [report.layers.map((l) => l.concentration!.mean), report.layers.map((l) => l.perImage[0].concentration)]);
  });

  await t.test('a running analysis: no box drawing yet', async () => {
    await post(page, { type: 'report', report: sampleReportV2({ finishedLayers: 2 }), source: SOURCE });
    await page.waitForSelector('.id-app[data-rendered="running"]');
    assert.match((await page.locator('.id-box-hint').textContent()) ?? '', /once the analysis has finished/);
    assert.equal(await page.locator('canvas[data-map="sid"]').getAttribute('tabindex'), null);
  });

  await t.test('compare with RU: SID and RU lines per model; boxes go to the picked report\'s file', async () => {
    const other = sampleReportV2();
    other.layers = other.layers.map((l) => ({ ...l, sid: { ...l.sid, mean: l.sid.mean + 0.3 }, ru: { ...l.ru!, mean: l.ru!.mean + 0.2 } }));
    await post(page, { type: 'compare', series: [{ label: 'net-a', report: sampleReportV2(), source: '/r/a.json' }, { label: 'net-b', report: other, source: '/r/b.json' }] });
    await page.waitForFunction(() => document.querySelector('canvas[data-chart="sid"]')?.getAttribute('data-points') === '3,3,3,3');
    assert.deepEqual(await attr(page, 'canvas[data-chart="sid"]', 'data-series'), ['net-a · SID', 'net-a · RU', 'net-b · SID', 'net-b · RU']);
    assert.match((await page.locator('.id-chart-box').first().locator('..').locator('h2').textContent()) ?? '', /^SID and RU per layer, 2 models$/);
    assert.deepEqual(await attr(page, 'canvas[data-chart="concentration"]', 'data-series'), ['net-a', 'net-b']);
    assert.equal((await attr(page, 'canvas[data-chart="baselines"]', 'data-series') as string[]).length, 6);
    await selectIn(page, 'Details for', '1');
    await page.waitForFunction(() => (window as unknown as { __state: { seriesIndex?: number } }).__state.seriesIndex === 1);
    const a = await cellPoint(page, 3, 4);
    const b = await cellPoint(page, 12, 15);
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move(b.x, b.y, { steps: 3 });
    await page.mouse.up();
    assert.deepEqual((await setRegions(page)).at(-1), { type: 'setRegion', source: '/r/b.json', image: 0, bbox: committed });
    await page.mouse.move(0, 0);
  });

  await t.test('a schema-1 report shows none of it', async () => {
    await postAndRender(page, { type: 'report', report: sampleReport(), source: SOURCE }, 'complete');
    assert.deepEqual(await page.locator('canvas[data-chart]').evaluateAll((cs) => cs.map((c) => c.getAttribute('data-chart'))), ['sid']);
    assert.deepEqual(await attr(page, 'canvas[data-chart="sid"]', 'data-series'), ['b>-cnn'], 'one line, labelled by the model folder as before');
    assert.equal(await page.locator('canvas[data-chart="sid"]').getAttribute('data-points'), '3');
    assert.equal(await page.locator('canvas[data-chart="sid"]').getAttribute('data-poor-decoder'), null);
    assert.deepEqual(await mapKeys(page), ['sid']);
    assert.equal(await page.locator('.id-map, .id-box-hint, .id-box-bar').count(), 0);
    assert.equal(await page.locator('canvas[data-map="sid"]').getAttribute('tabindex'), null);
    assert.equal(await page.locator('.id-table thead th').count(), 10);
    assert.deepEqual((await page.locator('vscode-button').allTextContents()).map((s) => s.trim()), ['Export JSON', 'Export PNG', 'Export CSV']);
    const posted = (await setRegions(page)).length;
    const a = await cellPoint(page, 3, 4);
    const b = await cellPoint(page, 12, 15);
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move(b.x, b.y, { steps: 3 });
    await page.mouse.up();
    assert.equal((await setRegions(page)).length, posted, 'no box on a schema-1 report');
  });

  assert.deepEqual(problems, [], 'no console errors, CSP violations or dialogs');
});
