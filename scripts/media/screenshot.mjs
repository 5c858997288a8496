// Screenshots of the report page for the README and the walkthrough: renders out/demo/report.html (made by
// `npm run demo`) in headless Chromium (/usr/bin/chromium, or $CHROMIUM) and writes PNGs into media/. With a
// second report at out/shots/resnet8.json (another architecture), also the comparison the panel draws for two
// models whose layer names differ:
//   npm run demo
//   node dist/cli.js analyze media/families/depth-resnet/resnet8.onnx --images media/sample/images \
//     --layers stem,stage1,stage2,stage3,gap --out out/shots/resnet8.json
//   npm run build --silent && node --import tsx scripts/media/screenshot.mjs
// The page is made afresh from out/demo/report.json with the current dist/webview.js.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { renderReportHtml } from '../../src/report-html/render.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const demoJson = path.join(root, 'out', 'demo', 'report.json');
if (!existsSync(demoJson)) {
  console.error(`${demoJson}: not found; run npm run demo first`);
  process.exit(1);
}
const page = path.join(root, 'out', 'shots', 'demo.html');
mkdirSync(path.dirname(page), { recursive: true });
writeFileSync(page, renderReportHtml(JSON.parse(readFileSync(demoJson, 'utf8')), readFileSync(path.join(root, 'dist', 'webview.js'), 'utf8')));
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, deviceScaleFactor: 1, colorScheme: 'dark' });
  const p = await context.newPage();
  await p.goto(`file://${page}`);
  await p.waitForSelector('.id-app[data-rendered="complete"]');
  await p.waitForTimeout(300);
  const out = (name) => path.join(root, 'media', name);
  // The README's screenshot: the top of the page (header, chart, heatmaps).
  const chartBottom = await p.locator('section.id-card').first().evaluate((e) => e.getBoundingClientRect().bottom);
  await p.screenshot({ path: out('screenshot.png'), clip: { x: 0, y: 0, width: 1200, height: Math.ceil(chartBottom) + 16 } });
  // The walkthrough: one picture per step, each a card of the page.
  const cards = p.locator('section.id-card');
  const n = await cards.count();
  console.log(`${n} cards: ${(await cards.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')))).join(' | ')}`);
  await cards.nth(0).screenshot({ path: out('walkthrough/chart.png') });
  await p.locator('section.id-card[aria-label="Pixel SID maps"]').screenshot({ path: out('walkthrough/maps.png') });
  await p.locator('header, .id-header').first().screenshot({ path: out('walkthrough/header.png') }).catch(async () => {
    await p.screenshot({ path: out('walkthrough/header.png'), clip: { x: 0, y: 0, width: 1200, height: 150 } });
  });
  const second = path.join(root, 'out', 'shots', 'resnet8.json');
  if (existsSync(second)) {
    // The page takes a comparison the way the VS Code panel sends one.
    const demo = JSON.parse(readFileSync(path.join(root, 'out', 'demo', 'report.json'), 'utf8'));
    const other = JSON.parse(readFileSync(second, 'utf8'));
    await p.evaluate((series) => window.postMessage({ type: 'compare', series }, '*'), [{ label: 'fashion-cnn', report: demo }, { label: 'ResNet-8', report: other }]);
    await p.waitForSelector('canvas[data-x-axis="depth"]');
    await p.waitForTimeout(300);
    await p.locator('section.id-card').first().screenshot({ path: out('walkthrough/compare.png') });
  }
  console.log('written media/screenshot.png and media/walkthrough/*.png');
} finally {
  await browser.close();
}
