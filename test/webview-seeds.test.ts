/**
 * The report webview (dist/webview.js in headless Chromium) with runs of one variant: a compare of two variants ×
 * three seeds draws two lines (mean ± SD across runs) and says whether their difference exceeds the run-to-run
 * spread; Compare Checkpoints with seeded trajectories draws one point per epoch. Needs `npm run build`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Report } from '../src/engine/report';
import type { ToWebview } from '../src/protocol';
import { sampleReport } from './fixtures/sample-report';
import { openPanel, panelPage, post as postTo, webviewBrowser } from './helpers/webviewPage';

/** The sample report with every SID value (per image and mean) shifted by `shift`. */
function shifted(shift: number): Report {
  const r = sampleReport();
  r.layers = r.layers.map((l) => ({ ...l, sid: { ...l.sid, mean: l.sid.mean + shift }, perImage: l.perImage.map((p, i) => ({ ...p, sidMean: p.sidMean + shift + 0.001 * i })) }));
  return r;
}

test('webview: runs of one variant are one line with the across-run statement; seeded epochs one point each', { timeout: 120_000 }, async (t) => {
  const chrome = await webviewBrowser(t, 'infodiscard-seeds-webview-');
  if (!chrome) return;
  const { page, problems } = await openPanel(chrome.browser, panelPage(chrome.dir));
  await page.waitForFunction(() => (window as unknown as { __posted: unknown[] }).__posted.length > 0);
  const post = (m: ToWebview) => postTo(page, m);

  // A: levels 0, 0.2, 0.4 for seeds 1..3; B = A + 1 ± 0.05, paired by seed.
  const series = [1, 2, 3].flatMap((seed, k) => [
    { label: `A (seed ${seed})`, report: shifted(0.2 * k), group: 'fam/a', seed },
    { label: `B (seed ${seed})`, report: shifted(0.2 * k + [1, 0.95, 1.05][k]), group: 'fam/b', seed },
  ]);
  await post({ type: 'compare', series });
  await page.waitForSelector('ul[data-run-spread] li');
  const canvas = page.locator('.id-chart-box canvas[data-chart="sid"]');
  assert.deepEqual(JSON.parse((await canvas.getAttribute('data-series')) ?? '[]'), ['A (3 runs)', 'B (3 runs)']);
  assert.match((await canvas.locator('xpath=ancestor::section').locator('h2').first().textContent()) ?? '', /2 models, 6 runs$/);
  const statement = (await page.locator('ul[data-run-spread] li').first().textContent()) ?? '';
  assert.match(statement, /^SID at \S+: B − A: exceeds the run-to-run spread \(paired t over runs, n = 3 runs: Δ \+1\.00\d nats\/pixel \[95 % CI /);

  // Compare Checkpoints: epochs 1 and 5 of three seeded runs.
  const view = { folder: '/runs/seeds', axis: 'epoch' as const };
  const cps = [1, 5].flatMap((epoch) => [1, 2, 3].map((seed) => ({ label: `epoch-${epoch}-seed${seed}`, epoch, report: shifted(0.1 * seed + epoch / 10) })));
  await post({ type: 'compareEpochs', view, epochs: [1, 5], series: cps });
  await page.waitForSelector('canvas[data-chart="epochs"]');
  const layers = sampleReport().requestedLayers;
  assert.equal(await page.locator('canvas[data-chart="epochs"]').getAttribute('data-points'), layers.map(() => '2').join(','));
  assert.match((await page.locator('section[aria-label="SID per layer vs epoch"] .id-hint').textContent()) ?? '', /Checkpoints of 3 training runs \(seeds\) share an epoch/);
  assert.deepEqual(problems, [], 'no console errors or CSP violations');
});
