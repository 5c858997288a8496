/**
 * One e2e test file's life: a workspace folder, one code-server on it and one Chromium page, started in `before` and
 * stopped in `after` (with the check that code-server left no process behind); and its scenarios, each starting
 * from a quiet window and leaving a screenshot when it fails.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { CodeServer, ensureTools, ROOT } from './codeServer';
import { Workbench } from './workbench';

export const UNSUPPORTED = process.platform !== 'linux' ? 'the end-to-end suite runs on Linux only' : undefined;

export interface Started<W> {
  workspace: W;
  server: CodeServer;
  wb: Workbench;
}

export interface SuiteOptions<W> {
  /** Makes the workspace the editor opens. */
  workspace: () => W;
  /** The workspace's folder (removed in `after`). */
  folder: (workspace: W) => string;
  /** Hands the started editor to the test file. */
  started: (s: Started<W>) => void;
  /** Run before each scenario, after Escape (e.g. close editors, clear notifications). */
  beforeScenario?: (wb: Workbench) => Promise<void>;
  /** Run after each scenario, passed or failed (e.g. restore settings). */
  afterScenario?: () => Promise<void>;
  /** A scenario's timeout unless it names its own. */
  timeoutMs: number;
}

export type Scenario = (name: string, slug: string, fn: (t: TestContext) => Promise<void>, options?: { timeoutMs?: number; skip?: string }) => void;

/** Registers the file's `before`/`after` hooks; returns the function that declares a scenario. */
export function e2eSuite<W>(options: SuiteOptions<W>): Scenario {
  let server: CodeServer | undefined;
  let wb: Workbench | undefined;
  let workspace: W | undefined;
  let setupError: Error | undefined;

  before(async () => {
    if (UNSUPPORTED) return;
    try {
      if (!existsSync(path.join(ROOT, 'dist', 'extension.js')) || !existsSync(path.join(ROOT, 'dist', 'worker.js'))) {
        throw new Error('dist/ is not built: run "npm run build" (npm run test:e2e does)');
      }
      const tools = ensureTools();
      workspace = options.workspace();
      const dir = options.folder(workspace);
      server = await CodeServer.start(tools, dir);
      wb = await Workbench.open(tools.chromium, server.url, dir);
      options.started({ workspace, server, wb });
    } catch (e) {
      setupError = e as Error;
    }
  }, { timeout: 25 * 60_000 });

  after(async () => {
    await wb?.close();
    if (server) {
      await server.stop();
      assert.deepEqual(server.processes(), [], 'code-server left processes behind');
    }
    if (workspace !== undefined) rmSync(options.folder(workspace), { recursive: true, force: true });
  }, { timeout: 60_000 });

  return (name, slug, fn, scenarioOptions = {}) => {
    test(name, { timeout: scenarioOptions.timeoutMs ?? options.timeoutMs, skip: UNSUPPORTED ?? scenarioOptions.skip }, async (t) => {
      if (setupError) throw setupError;
      const page = wb!;
      try {
        await page.page.keyboard.press('Escape');
        await options.beforeScenario?.(page);
        await fn(t);
      } catch (e) {
        await page.screenshot(`${slug}-failure`);
        throw e;
      } finally {
        await options.afterScenario?.();
      }
    });
  };
}
