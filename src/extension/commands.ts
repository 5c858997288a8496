/** Every command the extension contributes, registered in one place (ids match package.json's contributes.commands). */
import * as vscode from 'vscode';
import { analyzeModel, compareExample, compareModels } from './analyzeCommands';
import { compareCheckpoints } from './checkpointsCommand';
import { checkCoherency } from './coherencyCommand';
import type { Ctx } from './ctx';
import { SHOW_LAYER_COMMAND, type ShowLayerArgs } from './hovers';
import { openReportCommand, showLayerCommand } from './openReport';
import { editPreprocessing, type EditPreprocessingArgs } from './preprocessing/command';
import { EDIT_PREPROCESSING_COMMAND } from './preprocessing/prompt';

export const COMMANDS = {
  analyzeModel: 'infodiscard.analyzeModel',
  compareModels: 'infodiscard.compareModels',
  compareExample: 'infodiscard.compareExample',
  compareCheckpoints: 'infodiscard.compareCheckpoints',
  checkCoherency: 'infodiscard.checkCoherency',
  openReport: 'infodiscard.openReport',
  cancelAnalysis: 'infodiscard.cancelAnalysis',
  showLog: 'infodiscard.showLog',
  editPreprocessing: EDIT_PREPROCESSING_COMMAND,
  showLayer: SHOW_LAYER_COMMAND,
} as const;

async function cancelAnalysis(ctx: Ctx): Promise<void> {
  const runs = ctx.runs.list();
  if (runs.length === 0) {
    void vscode.window.showInformationMessage('infodiscard: no analysis is running.');
    return;
  }
  if (runs.length === 1) {
    ctx.runs.cancel(runs[0].id);
    return;
  }
  const all = { label: 'Cancel all', id: -1 };
  const picked = await vscode.window.showQuickPick(
    [...runs.map((r) => ({ label: r.label, description: r.progress, id: r.id })), all],
    { title: 'infodiscard: cancel which analysis?' },
  );
  if (picked) ctx.runs.cancel(picked.id === -1 ? undefined : picked.id);
}

export function registerCommands(ctx: Ctx): void {
  const reg = (id: string, fn: (...args: never[]) => unknown): void => {
    ctx.own(vscode.commands.registerCommand(id, fn as (...args: unknown[]) => unknown));
  };
  // Explorer context menus pass (clicked uri, all selected uris); editor menus pass the document's uri.
  reg(COMMANDS.analyzeModel, (uri?: vscode.Uri) => analyzeModel(ctx, uri));
  reg(COMMANDS.compareModels, (uri?: vscode.Uri, uris?: vscode.Uri[]) => compareModels(ctx, uri, uris));
  reg(COMMANDS.compareExample, () => compareExample(ctx));
  reg(COMMANDS.compareCheckpoints, (uri?: vscode.Uri) => compareCheckpoints(ctx, uri));
  reg(COMMANDS.checkCoherency, (uri?: vscode.Uri) => checkCoherency(ctx, uri));
  reg(COMMANDS.openReport, (uri?: vscode.Uri) => openReportCommand(ctx, uri));
  reg(COMMANDS.cancelAnalysis, () => cancelAnalysis(ctx));
  reg(COMMANDS.showLog, () => ctx.log.show(true));
  reg(COMMANDS.editPreprocessing, (arg?: vscode.Uri | EditPreprocessingArgs) => editPreprocessing(ctx, arg, (model) => analyzeModel(ctx, model)));
  reg(COMMANDS.showLayer, (args?: ShowLayerArgs) => showLayerCommand(ctx, args));
}
