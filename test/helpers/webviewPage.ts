/**
 * The report webview as the VS Code panel runs it, for tests in headless Chromium: the page the panel builds (CSP with
 * a nonce, dist/webview.js loaded by URL; file: stands in for webview.cspSource) with a stub acquireVsCodeApi that
 * records what the page posts and the state it saves. One place for what every webview test sets up.
 */
import type { TestContext } from 'node:test';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import type { ToWebview } from '../../src/protocol';
import { makeNonce, reportHtmlDocument } from '../../src/report-html/render';

const ROOT = path.resolve(__dirname, '..', '..');
export const CHROMIUM = '/usr/bin/chromium';

/** Writes the panel's document into `dir` (building dist/webview.js first if it is missing); returns its path. */
export function panelPage(dir: string): string {
  const bundle = path.join(ROOT, 'dist', 'webview.js');
  if (!existsSync(bundle)) execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs')], { cwd: ROOT, stdio: 'inherit' });
  const nonce = makeNonce();
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

/**
 * Headless Chromium and a temporary folder, both removed when the test ends; null (and the test skipped) when
 * Chromium is not installed.
 */
export async function webviewBrowser(t: TestContext, prefix: string): Promise<{ browser: Browser; dir: string } | null> {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} not found`);
    return null;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'] });
  t.after(async () => {
    await browser.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { browser, dir };
}

/**
 * Opens the panel page in a new tab with the stub acquireVsCodeApi (posts in window.__posted, state in
 * window.__state); `problems` collects console errors and warnings, page errors, CSP violations and dialogs.
 */
export async function openPanel(browser: Browser, file: string, viewport = { width: 1200, height: 1000 }): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport });
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
  return { page, problems };
}

/** Posts a host → webview message to the page, as the extension's webview.postMessage does. */
export async function post(page: Page, message: ToWebview): Promise<void> {
  await page.evaluate((m) => window.postMessage(m, '*'), message as unknown as Record<string, unknown>);
}

/**
 * Posts a message that re-renders the page and waits for that render to finish with `status`. The render mark is
 * cleared first: on a page that already shows a complete report, waiting for "complete" alone returns before the
 * new report is drawn (a race seen under load).
 */
export async function postAndRender(page: Page, message: ToWebview, status: string): Promise<void> {
  await page.evaluate(() => document.querySelector('.id-app')?.removeAttribute('data-rendered'));
  await post(page, message);
  await page.waitForSelector(`.id-app[data-rendered="${status}"]`);
}
