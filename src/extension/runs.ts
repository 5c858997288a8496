/**
 * The analyses running now: each has an AbortController (Cancel Analysis, the notification's Cancel button and
 * the status-bar item all abort it), and a status-bar item shows them while any runs.
 */
import * as vscode from 'vscode';

export interface RunHandle {
  readonly id: number;
  readonly label: string;
  readonly controller: AbortController;
  /** The report file this run writes. */
  readonly reportPath?: string;
  /** Progress text for the status bar ("block2_conv 3/7"). */
  setProgress(text: string): void;
  /** How it ended, shown in the status bar for a while once no other run is active ("failed: ..."). */
  finish(outcome: RunOutcome, detail?: string): void;
  /** The run is over. */
  dispose(): void;
}

/** Status-bar text must not carry $(icon) syntax from untrusted names. */
export function statusText(s: string): string {
  return s.replace(/\$\(/g, '$\u200b(').replace(/\s+/g, ' ').slice(0, 80);
}

export type RunOutcome = 'complete' | 'failed' | 'cancelled';

const OUTCOME_ICON: Record<RunOutcome, string> = { complete: '$(check)', failed: '$(error)', cancelled: '$(circle-slash)' };

/** How long the status bar shows how the last run ended. */
export const OUTCOME_SHOWN_MS = 15_000;

export class Runs implements vscode.Disposable {
  private readonly active = new Map<number, { label: string; controller: AbortController; progress: string; reportPath?: string }>();
  private nextId = 1;
  private item: vscode.StatusBarItem | undefined;
  /** The last run's end, shown while nothing runs. */
  private outcome: { text: string; tooltip: string; until: number } | undefined;
  private outcomeTimer: ReturnType<typeof setTimeout> | undefined;

  /** What the status bar says now (tests). */
  get statusText(): string | undefined {
    return this.item?.text;
  }

  get count(): number {
    return this.active.size;
  }

  list(): { id: number; label: string; progress: string }[] {
    return [...this.active].map(([id, r]) => ({ id, label: r.label, progress: r.progress }));
  }

  add(label: string, controller: AbortController = new AbortController(), reportPath?: string): RunHandle {
    const id = this.nextId++;
    const run = { label, controller, progress: 'starting…', reportPath };
    this.active.set(id, run);
    this.refresh();
    return {
      id,
      label,
      controller,
      reportPath,
      setProgress: (text) => {
        run.progress = text;
        this.refresh();
      },
      finish: (outcome, detail) => {
        const text = `${OUTCOME_ICON[outcome]} SID ${statusText(label)}: ${outcome}${detail ? ` · ${statusText(detail)}` : ''}`;
        this.outcome = { text, tooltip: `${label}: ${outcome}${detail ? ` (${detail})` : ''}`, until: Date.now() + OUTCOME_SHOWN_MS };
        if (this.outcomeTimer) clearTimeout(this.outcomeTimer);
        this.outcomeTimer = setTimeout(() => {
          this.outcome = undefined;
          this.refresh();
        }, OUTCOME_SHOWN_MS);
        this.outcomeTimer.unref?.();
      },
      dispose: () => {
        if (this.active.delete(id)) this.refresh();
      },
    };
  }

  /** Aborts one run, or every run when `id` is omitted. Returns how many were cancelled. */
  cancel(id?: number): number {
    let n = 0;
    for (const [key, r] of this.active) {
      if (id !== undefined && key !== id) continue;
      if (!r.controller.signal.aborted) {
        r.controller.abort();
        n++;
      }
    }
    return n;
  }

  /** Whether a run (not yet over) writes this report file. */
  isWriting(reportPath: string): boolean {
    for (const r of this.active.values()) if (r.reportPath === reportPath) return true;
    return false;
  }

  /** Aborts the runs writing any of these report files (their panel was closed). */
  cancelWriting(reportPaths: string[]): number {
    let n = 0;
    for (const [id, r] of this.active) if (r.reportPath && reportPaths.includes(r.reportPath)) n += this.cancel(id);
    return n;
  }

  private refresh(): void {
    void vscode.commands.executeCommand('setContext', 'infodiscard.running', this.active.size > 0);
    if (this.active.size === 0) {
      if (this.outcome && this.item && Date.now() < this.outcome.until) {
        this.item.text = this.outcome.text;
        this.item.tooltip = this.outcome.tooltip;
        this.item.command = 'infodiscard.showLog';
        this.item.show();
        return;
      }
      this.item?.hide();
      return;
    }
    if (!this.item) {
      this.item = vscode.window.createStatusBarItem('infodiscard.running', vscode.StatusBarAlignment.Left, 10);
      this.item.name = 'infodiscard analysis';
    }
    this.item.command = 'infodiscard.cancelAnalysis';
    const runs = [...this.active.values()];
    this.item.text = runs.length === 1
      ? `$(loading~spin) SID ${statusText(runs[0].label)}: ${statusText(runs[0].progress)}`
      : `$(loading~spin) SID: ${runs.length} analyses`;
    this.item.tooltip = `${runs.map((r) => `${r.label}: ${r.progress}`).join('\n')}\nClick to cancel`;
    this.item.show();
  }

  dispose(): void {
    if (this.outcomeTimer) clearTimeout(this.outcomeTimer);
    this.cancel();
    this.active.clear();
    this.item?.dispose();
    this.item = undefined;
  }
}
