/**
 * Extension entry point. Activation (on our commands, a restored report panel, or a Python/TS/JS file for the
 * hovers) only registers things: no file scans, no worker process; those happen when a command runs or on the
 * first hover over a string. The analysis itself runs in worker processes (dist/worker.js): this bundle holds no
 * TensorFlow.js.
 */
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { Ctx } from './ctx';
import { LayerIndex, registerHovers } from './hovers';
import { panelHooks, reportsFolders } from './openReport';
import { ReportPanel, VIEW_TYPE } from './panel';
import { registerReportsView } from './views/treeCommands';
import { scheduleKerasJsonScan } from './kerasJsonMenu';

let current: Ctx | undefined;

export function activate(context: vscode.ExtensionContext): Ctx {
  const ctx = new Ctx(context);
  current = ctx;
  context.subscriptions.push({ dispose: () => void ctx.dispose() });

  registerCommands(ctx);
  // The activity-bar view of saved reports: reads nothing until it is shown.
  registerReportsView(ctx);
  // Which .json files are Keras to_json models with weights beside them (for the Explorer menus), a little later.
  scheduleKerasJsonScan(ctx);

  // Restores report panels after a window reload, from the report paths the webview kept in its state.
  ctx.own(vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
    async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown) {
      ReportPanel.revive(ctx, panel, state, panelHooks(ctx));
    },
  }));

  // Open panels follow the report files the extension writes.
  ctx.own(ctx.onReportChanged((c) => {
    if (c.report) ReportPanel.reportChanged(c.path, c.report);
  }));

  const index = new LayerIndex(ctx.store, () => reportsFolders(ctx), ctx.onReportChanged);
  registerHovers(ctx, index);
  ctx.own(vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration('infodiscard.reportsFolder')) index.invalidate();
  }));
  return ctx;
}

export async function deactivate(): Promise<void> {
  const ctx = current;
  current = undefined;
  // Stops the worker processes; a running analysis keeps its finished layers in its report.
  await ctx?.dispose();
}
