/**
 * The reports view's actions: open a report in its panel, re-run its model, compare it with another report, delete
 * it (after a modal confirmation; to the trash where the file system has one). Arguments come from the tree (a
 * ReportNode or ModelNode) and are checked, since a command can also be run with anything.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as vscode from 'vscode';
import type { Report } from '../../engine/report';
import { parseReport } from '../../engine/reportFile';
import { distinctLabels } from '../analyzeCommands';
import type { Ctx } from '../ctx';
import { plainMessage } from '../messages';
import { showError } from '../notify';
import { openReportFile, panelHooks, reportsFolders } from '../openReport';
import { ReportPanel } from '../panel';
import { modelName, type ReportSummary } from '../reportStore';
import { readFile } from 'node:fs/promises';
import { ReportsTreeProvider, TREE_COMMANDS, VIEW_ID, type ModelNode, type ReportNode, type TreeNode } from './reportsTree';
import { differenceBetween, type ReportFacts } from './settingsDiff';

function isReportNode(n: unknown): n is ReportNode {
  return !!n && typeof n === 'object' && (n as ReportNode).kind === 'report' && typeof (n as ReportNode).summary?.path === 'string';
}

function isModelNode(n: unknown): n is ModelNode {
  return !!n && typeof n === 'object' && (n as ModelNode).kind === 'model' && typeof (n as ModelNode).modelPath === 'string';
}

const facts = (s: ReportSummary): ReportFacts => ({ settings: s.settings, modelSha: s.modelSha, images: s.images, requestedLayers: s.requestedLayers, createdAt: s.createdAt });

/**
 * Legend labels for two or more reports: for reports of one model, the model name and what sets each apart
 * ("fashion-cnn · α 1.5" vs "fashion-cnn · α 2"); for different models, their names made distinct.
 */
export function compareLabels(items: { summary: ReportSummary; modelPath: string }[]): string[] {
  const sameModel = new Set(items.map((i) => i.modelPath)).size === 1;
  if (!sameModel) return distinctLabels(items.map((i) => i.modelPath));
  const name = modelName(items[0].modelPath);
  return items.map((item, i) => {
    const diff = new Set<string>();
    items.forEach((other, j) => {
      if (j !== i) for (const d of differenceBetween(facts(item.summary), facts(other.summary))) diff.add(d);
    });
    return diff.size ? `${name} · ${[...diff].join(' · ')}` : `${name} · ${item.summary.createdAt.slice(0, 16).replace('T', ' ')}`;
  });
}

async function openNode(ctx: Ctx, node: unknown): Promise<void> {
  if (!isReportNode(node)) return;
  await openReportFile(ctx, node.summary.path);
}

/** Analyze Model on the report's model (the current settings; an unfinished report at the same settings is resumed). */
async function rerunNode(ctx: Ctx, node: unknown): Promise<void> {
  const modelPath = isReportNode(node) || isModelNode(node) ? node.modelPath : undefined;
  if (!modelPath) return;
  if (!existsSync(modelPath)) {
    void vscode.window.showErrorMessage(`infodiscard: ${plainMessage(modelPath)}: the model file is gone; restore it to analyse it again.`);
    return;
  }
  await vscode.commands.executeCommand('infodiscard.analyzeModel', vscode.Uri.file(modelPath));
}

interface CompareItem extends vscode.QuickPickItem {
  node?: ReportNode;
}

/** Compare a report with another one picked from the view's reports (the same model's first). */
async function compareNode(ctx: Ctx, provider: ReportsTreeProvider, node: unknown): Promise<void> {
  if (!isReportNode(node)) return;
  const models = await provider.modelNodes();
  const own = models.find((m) => m.modelPath === node.modelPath);
  const items: CompareItem[] = [];
  const add = (title: string, reports: ReportNode[], withModel: boolean): void => {
    const list = reports.filter((r) => r.summary.path !== node.summary.path);
    if (!list.length) return;
    items.push({ label: title, kind: vscode.QuickPickItemKind.Separator });
    for (const r of list) {
      const name = r.name || r.summary.createdAt.slice(0, 16).replace('T', ' ');
      items.push({ label: withModel ? `${modelName(r.modelPath)}${r.name ? ` · ${r.name}` : ''}` : name, description: `${r.summary.status} · ${r.summary.layers.length} layers`, detail: vscode.workspace.asRelativePath(r.summary.path), node: r });
    }
  };
  add(`Other reports of ${modelName(node.modelPath)}`, own?.reports ?? [], false);
  add('Other models', models.filter((m) => m.modelPath !== node.modelPath).flatMap((m) => m.reports), true);
  if (!items.some((i) => i.node)) {
    void vscode.window.showInformationMessage('infodiscard: there is no other report to compare with; analyse another model or the same one with other settings first.');
    return;
  }
  const picked = await vscode.window.showQuickPick(items, { title: `infodiscard: compare ${modelName(node.modelPath)} with…`, matchOnDescription: true, matchOnDetail: true });
  if (!picked?.node) return;
  const pair = [node, picked.node];
  const labels = compareLabels(pair);
  const reports = new Map<string, Report>();
  for (const r of pair) {
    try {
      reports.set(r.summary.path, parseReport(await readFile(r.summary.path, 'utf8'), r.summary.path));
    } catch {
      // gone or unreadable: the panel reads it again and shows the other
    }
  }
  ReportPanel.createOrShow(ctx, pair.map((r, i) => ({ path: r.summary.path, label: labels[i] })), panelHooks(ctx), reports);
}

async function deleteNode(ctx: Ctx, provider: ReportsTreeProvider, node: unknown): Promise<void> {
  if (!isReportNode(node)) return;
  const file = node.summary.path;
  if (ctx.runs.isWriting(file)) {
    void vscode.window.showInformationMessage('infodiscard: an analysis is writing this report; cancel it first.');
    return;
  }
  const what = `${modelName(node.modelPath)}${node.name ? ` · ${node.name}` : ''}`;
  const pick = await vscode.window.showWarningMessage(
    `Delete the infodiscard report "${plainMessage(what, 120)}" (${plainMessage(path.basename(file), 120)})?`,
    { modal: true, detail: 'The report file is moved to the trash where the system has one.' },
    'Delete',
  );
  if (pick !== 'Delete') return;
  try {
    await vscode.workspace.fs.delete(vscode.Uri.file(file), { useTrash: true });
  } catch (e) {
    void vscode.window.showErrorMessage(`infodiscard: could not delete ${plainMessage(file)}: ${plainMessage((e as Error).message)}`);
    return;
  }
  ctx.store.forget(file);
  ctx.log.info(`deleted report ${file}`);
  // Panels showing only this report have nothing left to show.
  for (const p of ReportPanel.all()) if (p.sources.length === 1 && p.sources[0].path === file) p.dispose();
  provider.refresh();
}

/** Registers the view and its commands. Nothing is read until the view is shown. */
export function registerReportsView(ctx: Ctx): ReportsTreeProvider {
  const provider = ctx.own(new ReportsTreeProvider(ctx, () => reportsFolders(ctx)));
  ctx.own(vscode.window.createTreeView<TreeNode>(VIEW_ID, { treeDataProvider: provider, showCollapseAll: true }));
  const reg = (id: string, fn: (node?: unknown) => Promise<void> | void): void => {
    ctx.own(vscode.commands.registerCommand(id, async (node?: unknown) => {
      try {
        await fn(node);
      } catch (e) {
        showError(ctx, e);
      }
    }));
  };
  reg(TREE_COMMANDS.open, (n) => openNode(ctx, n));
  reg(TREE_COMMANDS.rerun, (n) => rerunNode(ctx, n));
  reg(TREE_COMMANDS.compare, (n) => compareNode(ctx, provider, n));
  reg(TREE_COMMANDS.delete, (n) => deleteNode(ctx, provider, n));
  reg(TREE_COMMANDS.refresh, () => provider.refresh());
  ctx.own(vscode.workspace.onDidChangeConfiguration((e) => {
    if (e.affectsConfiguration('infodiscard.reportsFolder')) provider.refresh();
  }));
  return provider;
}

