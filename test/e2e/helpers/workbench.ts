/**
 * Driving code-server's workbench with playwright-core and Debian's Chromium: the command palette, Quick Open,
 * the Explorer's context menu, notifications, hovers, and the report panel's webview (two nested iframes).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type FrameLocator, type Locator, type Page } from 'playwright-core';
import { OUT } from './codeServer';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, timeoutMs = 30_000, everyMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

export class Workbench {
  /** Messages of JavaScript dialogs (alert/confirm) any frame opened: an injected script would show up here. */
  readonly dialogs: string[] = [];
  /** Uncaught page errors. */
  readonly pageErrors: string[] = [];

  private constructor(readonly browser: Browser, readonly page: Page, private readonly url: string) {}

  static async open(chromiumPath: string, url: string, folder: string): Promise<Workbench> {
    const browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS, headless: true });
    const context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
    const page = await context.newPage();
    const wb = new Workbench(browser, page, `${url}/?folder=${encodeURIComponent(folder)}`);
    page.on('dialog', (d) => {
      wb.dialogs.push(d.message());
      void d.dismiss().catch(() => {});
    });
    page.on('pageerror', (e) => wb.pageErrors.push(e.message));
    await wb.load();
    return wb;
  }

  private async load(): Promise<void> {
    await this.page.goto(this.url);
    await this.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    // The Explorer shows the folder once the workbench has restored.
    await this.page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
  }

  /** Reloads the window the way a user does (Developer: Reload Window). */
  async reloadWindow(): Promise<void> {
    await this.runCommand('Developer: Reload Window', { waitClosed: false });
    await this.page.waitForEvent('load', { timeout: 60_000 }).catch(() => {});
    await this.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await this.page.locator('.explorer-folders-view .monaco-list-row').first().waitFor({ timeout: 60_000 });
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => {});
  }

  async screenshot(name: string): Promise<string> {
    mkdirSync(OUT, { recursive: true });
    const file = path.join(OUT, `${name.replace(/[^A-Za-z0-9._-]+/g, '-')}.png`);
    await this.page.screenshot({ path: file }).catch(() => {});
    return file;
  }

  get quickInput(): Locator {
    return this.page.locator('.quick-input-widget');
  }

  private async focusedQuickPickRow(): Promise<string> {
    const row = this.quickInput.locator('.monaco-list-row.focused');
    if ((await row.count()) === 0) return '';
    return (await row.first().textContent()) ?? '';
  }

  /**
   * Runs a command from the palette by its title. The workbench shows up before extensions have registered their
   * commands: Enter is pressed only when the focused row is the command, otherwise Escape and try again.
   */
  async runCommand(title: string, options: { timeoutMs?: number; waitClosed?: boolean } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 60_000);
    for (;;) {
      await this.page.keyboard.press('Escape');
      await this.page.keyboard.press('F1');
      const input = this.quickInput.locator('input');
      await input.waitFor({ state: 'visible', timeout: 10_000 });
      await input.fill(`>${title}`);
      const found = await waitFor(`"${title}" in the palette`, async () => {
        const text = await this.focusedQuickPickRow();
        return text.toLowerCase().includes(title.toLowerCase()) ? text : '';
      }, 2_000, 100).catch(() => '');
      if (found) {
        await this.page.keyboard.press('Enter');
        if (options.waitClosed !== false) await sleep(200);
        return;
      }
      await this.page.keyboard.press('Escape');
      if (Date.now() > deadline) throw new Error(`command "${title}" did not appear in the palette`);
      await sleep(1_000);
    }
  }

  /** Opens a workspace file with Quick Open (Ctrl+P). */
  async openFile(relPath: string): Promise<void> {
    await this.page.keyboard.press('Escape');
    await this.runCommand('Go to File...', { waitClosed: false });
    const input = this.quickInput.locator('input');
    await input.fill(relPath);
    await waitFor(`${relPath} in Quick Open`, async () => {
      const text = await this.focusedQuickPickRow();
      return text.includes(path.basename(relPath)) && text.includes(path.dirname(relPath) === '.' ? '' : path.dirname(relPath));
    }, 15_000);
    await this.page.keyboard.press('Enter');
    await this.page.locator(`.tab[data-resource-name="${path.basename(relPath)}"].active, .tab.active[aria-label*="${path.basename(relPath)}"]`).first().waitFor({ timeout: 15_000 });
  }

  /**
   * The Explorer row of a workspace-relative path, expanding its folders (clicking each collapsed one) as needed.
   * Rows are found by label and nesting level, so the right one of several "model.json" rows is used.
   */
  async revealInExplorer(relPath: string): Promise<Locator> {
    const parts = relPath.split('/');
    const rowsLocator = this.page.locator('.explorer-folders-view .monaco-list-row');
    const rowAt = (index: number): Locator => this.page.locator(`.explorer-folders-view .monaco-list-row[data-index="${index}"]`);
    return waitFor(`${relPath} in the Explorer`, async () => {
      const rows = (await rowsLocator.evaluateAll((els) => els.map((e) => ({
        index: Number(e.getAttribute('data-index')),
        label: e.getAttribute('aria-label'),
        level: Number(e.getAttribute('aria-level')),
        expanded: e.getAttribute('aria-expanded'),
      })))).sort((a, b) => a.index - b.index);
      let start = 0;
      let end = rows.length;
      let level = rows.length ? Math.min(...rows.map((r) => r.level)) : 1;
      for (let i = 0; i < parts.length; i++) {
        const k = rows.findIndex((r, j) => j >= start && j < end && r.level === level && r.label === parts[i]);
        if (k < 0) return undefined;
        if (i === parts.length - 1) return rowAt(rows[k].index);
        if (rows[k].expanded !== 'true') {
          const row = rowAt(rows[k].index);
          await row.click();
          await waitFor(`${parts[i]} expanded`, async () => (await row.getAttribute('aria-expanded')) === 'true', 3_000).catch(() => {});
          return undefined;
        }
        start = k + 1;
        const next = rows.findIndex((r, j) => j > k && r.level <= rows[k].level);
        end = next < 0 ? rows.length : next;
        level++;
      }
      return undefined;
    }, 30_000, 300);
  }

  /** Right-clicks a file in the Explorer and clicks the context-menu entry with this text. */
  async explorerContextMenu(relPath: string, entry: string): Promise<void> {
    const row = await this.revealInExplorer(relPath);
    const item = this.page.locator('.monaco-menu .action-item', { hasText: entry });
    await waitFor(`"${entry}" in the context menu of ${relPath}`, async () => {
      if (await item.first().isVisible()) return true;
      await this.page.keyboard.press('Escape');
      await row.click({ button: 'right' });
      await item.first().waitFor({ state: 'visible', timeout: 2_000 }).catch(() => {});
      return item.first().isVisible();
    }, 60_000, 500);
    // A menu ignores a click that comes too soon after it opened: click until it closes.
    await waitFor(`"${entry}" clicked`, async () => {
      await item.first().click({ timeout: 2_000 }).catch(() => {});
      await item.first().waitFor({ state: 'hidden', timeout: 1_000 }).catch(() => {});
      return !(await item.first().isVisible());
    }, 15_000, 0);
  }

  /** Visible notification toasts: text and severity (from the icon). */
  async notifications(): Promise<{ text: string; severity: 'error' | 'warning' | 'info'; progress: boolean }[]> {
    const items = this.page.locator('.notifications-toasts .notification-list-item');
    const out: { text: string; severity: 'error' | 'warning' | 'info'; progress: boolean }[] = [];
    for (const item of await items.all()) {
      if (!(await item.isVisible().catch(() => false))) continue;
      const text = ((await item.locator('.notification-list-item-message').textContent().catch(() => '')) ?? '').trim();
      const icon = (await item.locator('.notification-list-item-icon').getAttribute('class').catch(() => '')) ?? '';
      const severity = /codicon-error/.test(icon) ? 'error' : /codicon-warning/.test(icon) ? 'warning' : 'info';
      const progress = await item.locator('.monaco-progress-container.active, .monaco-progress-container.infinite, .monaco-progress-container.discrete').count() > 0;
      out.push({ text, severity, progress });
    }
    return out;
  }

  async clearNotifications(): Promise<void> {
    await this.runCommand('Notifications: Clear All Notifications');
  }

  async closeAllEditors(): Promise<void> {
    await this.runCommand('View: Close All Editors');
    // A dirty editor would ask; none here. Let the webviews go away.
    await waitFor('no editors open', async () => (await this.page.locator('.tabs-container .tab').count()) === 0, 15_000);
  }

  /** The editor tab whose label contains `text`. */
  tab(text: string | RegExp): Locator {
    return this.page.locator('.tabs-container .tab', { hasText: text });
  }

  /** The iframe element of the visible webview (the report panel). */
  visibleWebview(): Locator {
    return this.page.locator('iframe.webview.ready').filter({ visible: true });
  }

  /** The report panel's document: the webview's iframe, then its #active-frame. */
  reportFrame(): FrameLocator {
    return this.visibleWebview().first().contentFrame().frameLocator('#active-frame');
  }

  /** The chart's test attributes: labels and finished layers per series (null while no chart is drawn). */
  async chartState(frame: FrameLocator = this.reportFrame()): Promise<{ series: string[]; points: number[] } | null> {
    const canvas = frame.locator('canvas[data-series]');
    if ((await canvas.count()) === 0) return null;
    const series = await canvas.first().getAttribute('data-series', { timeout: 1_000 });
    const points = await canvas.first().getAttribute('data-points', { timeout: 1_000 });
    if (series === null || points === null) return null;
    return { series: JSON.parse(series) as string[], points: points.split(',').map(Number) };
  }

  /** Places the cursor on line/column (1-based) of the active editor with Go to Line. */
  async goToLine(line: number, column: number): Promise<void> {
    await this.runCommand('Go to Line/Column...', { waitClosed: false });
    await this.quickInput.locator('input').fill(`:${line}:${column}`);
    await sleep(200);
    await this.page.keyboard.press('Enter');
  }

  /**
   * Puts the cursor on line/column (1-based) with Go to Line, then hovers the mouse there; returns the hover widget
   * once its text matches `expect`.
   */
  async hoverAt(line: number, column: number, expect: RegExp): Promise<Locator> {
    await this.goToLine(line, column);
    const cursor = this.page.locator('.editor-instance .cursors-layer .cursor').first();
    const hover = this.page.locator('.monaco-hover:not(.hidden)').filter({ hasText: expect });
    return waitFor(`a hover at ${line}:${column} matching ${expect}`, async () => {
      await cursor.waitFor({ state: 'attached', timeout: 5_000 });
      const box = await cursor.boundingBox();
      if (!box) return undefined;
      const x = box.x + 2;
      const y = box.y + box.height / 2;
      await this.page.mouse.move(x + 4, y);
      await sleep(50);
      await this.page.mouse.move(x, y);
      await hover.first().waitFor({ state: 'visible', timeout: 4_000 }).catch(() => {});
      if (await hover.first().isVisible()) return hover.first();
      // Move away so the next attempt is a fresh hover.
      await this.page.mouse.move(5, 5);
      return undefined;
    }, 45_000, 500);
  }
}

/** One row of the open quick pick, as a user sees it. */
export interface QuickPickRow {
  index: number;
  ariaLabel: string;
  label: string;
  description: string;
  detail: string;
  /** Multi-select lists: whether its checkbox is checked. */
  checked: boolean;
  focused: boolean;
}

/** The visible rows of the open quick pick in list order (separators that are rows of their own left out). */
export async function quickPickRows(wb: Workbench): Promise<QuickPickRow[]> {
  const rows = wb.quickInput.locator('.quick-input-list .monaco-list-row');
  // No named functions inside: tsx (esbuild keepNames) would wrap them in a __name() the page does not have.
  const all = await rows.evaluateAll((els) => els.map((e) => ({
    index: Number(e.getAttribute('data-index')),
    ariaLabel: e.getAttribute('aria-label') ?? '',
    label: (e.querySelector('.label-name')?.textContent ?? '').trim(),
    description: (e.querySelector('.label-description')?.textContent ?? '').trim(),
    detail: (e.querySelector('.quick-input-list-detail, .quick-input-list-label-meta .label-name')?.textContent ?? '').trim(),
    checked: e.getAttribute('aria-checked') === 'true'
      || (e.querySelector('input[type=checkbox]') as HTMLInputElement | null)?.checked === true
      || !!e.querySelector('.monaco-custom-toggle.checked, .monaco-checkbox.checked, [role=checkbox][aria-checked="true"]'),
    focused: e.classList.contains('focused'),
    separatorOnly: e.classList.contains('quick-input-list-separator-as-item') || !e.querySelector('.label-name'),
  })));
  return all.filter((r) => !r.separatorOnly).sort((a, b) => a.index - b.index).map(({ separatorOnly: _s, ...r }) => r);
}

/** Waits for a quick pick whose title contains `title` and whose rows are there (the list fills in after the title). */
export async function waitForQuickPick(wb: Workbench, title: string | RegExp, timeoutMs = 120_000): Promise<QuickPickRow[]> {
  return waitFor(`the quick pick "${title}"`, async () => {
    if (!(await wb.quickInput.isVisible())) return undefined;
    const t = ((await wb.quickInput.locator('.quick-input-title').textContent().catch(() => '')) ?? '').trim();
    if (typeof title === 'string' ? !t.includes(title) : !title.test(t)) return undefined;
    const rows = await quickPickRows(wb);
    return rows.length > 0 ? rows : undefined;
  }, timeoutMs, 100);
}

/** The status bar's texts (left and right), codicons left out. */
export async function statusBarTexts(wb: Workbench): Promise<string[]> {
  return (await wb.page.locator('.statusbar-item').allTextContents()).map((t) => t.replace(/\s+/g, ' ').trim()).filter((t) => t);
}
