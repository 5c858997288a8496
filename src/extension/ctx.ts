/**
 * The extension's context object (one per activation, passed to every command, panel and provider): the VS Code
 * ExtensionContext, the log, the worker pool, the running analyses and the "a report file changed" event.
 * Everything costly is created on first use, so activation stays cheap.
 */
import * as vscode from 'vscode';
import type { Report } from '../engine/report';
import { ReportStore } from './reportStore';
import { Runs } from './runs';
import { AnalysisPool } from '../worker/client';

export interface ReportChange {
  /** Absolute path of the report file. */
  path: string;
  /** The report as now written, when the writer had it at hand (otherwise readers re-read the file). */
  report?: Report;
}

export class Ctx implements vscode.Disposable {
  readonly runs: Runs;
  /** Saved reports: reading, keys, model hashes (cached). */
  readonly store = new ReportStore();
  private logChannel: vscode.LogOutputChannel | undefined;
  private analysisPool: AnalysisPool | undefined;
  private poolSize = 0;
  private readonly reportChanged = new vscode.EventEmitter<ReportChange>();
  /** Fires after the extension (or a worker on its behalf) wrote or found a new version of a report file. */
  readonly onReportChanged = this.reportChanged.event;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(readonly extension: vscode.ExtensionContext) {
    this.runs = new Runs();
    this.disposables.push(this.runs, this.reportChanged);
  }

  get extensionUri(): vscode.Uri {
    return this.extension.extensionUri;
  }

  /** The "infodiscard" output channel (created on first use). */
  get log(): vscode.LogOutputChannel {
    if (!this.logChannel) {
      this.logChannel = vscode.window.createOutputChannel('infodiscard', { log: true });
      this.disposables.push(this.logChannel);
    }
    return this.logChannel;
  }

  /** The worker pool, (re)sized to the `infodiscard.workers` setting; forks nothing until an analysis runs. */
  pool(size: number): AnalysisPool {
    if (this.analysisPool && size !== this.poolSize && this.runs.count === 0) {
      void this.analysisPool.dispose();
      this.analysisPool = undefined;
    }
    if (!this.analysisPool) {
      const workerPath = vscode.Uri.joinPath(this.extensionUri, 'dist', 'worker.js').fsPath;
      this.analysisPool = new AnalysisPool(workerPath, { size, log: (line) => this.log.info(line) });
      this.poolSize = size;
    }
    return this.analysisPool;
  }

  /** Report panels open now (kept by the panels themselves). */
  openPanels = 0;

  /**
   * No panel open and nothing running, or a run was just cancelled and nothing else runs: stop the worker
   * processes, so closing the panel or cancelling leaves none behind. Otherwise an idle worker stays warm for
   * the next analysis (its backend takes a second to start).
   */
  releaseWorkersIfUnused(options: { afterCancel?: boolean } = {}): void {
    // A cancel is a deliberate stop: the worker exits even with a panel open (the next run restarts it).
    if ((this.openPanels > 0 && !options.afterCancel) || this.runs.count > 0 || !this.analysisPool) return;
    void this.analysisPool.dispose();
    this.analysisPool = undefined;
  }

  fireReportChanged(change: ReportChange): void {
    this.reportChanged.fire(change);
  }

  /** Registers something to dispose with the extension. */
  own<T extends vscode.Disposable>(d: T): T {
    this.disposables.push(d);
    return d;
  }

  async dispose(): Promise<void> {
    const pool = this.analysisPool;
    this.analysisPool = undefined;
    for (const d of this.disposables.splice(0).reverse()) d.dispose();
    await pool?.dispose();
  }
}
