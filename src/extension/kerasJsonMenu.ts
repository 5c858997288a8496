/**
 * Keras to_json files can have any name, so the Explorer menus cannot pick them out by name: the context key
 * `infodiscard.kerasJsonFiles` lists those that have their weights beside them (`name.h5` / `name.weights.h5`),
 * and the menus offer Analyze Model on a .json in it. Filled a few seconds after activation from one search for
 * .h5/.hdf5 files (no watcher: activation stays cheap), and again after each analysis.
 */
import * as vscode from 'vscode';
import { findKerasJsonFor } from '../engine/kerasFiles';
import type { Ctx } from './ctx';

export const KERAS_JSON_CONTEXT = 'infodiscard.kerasJsonFiles';
const MAX_WEIGHT_FILES = 2000;

export async function refreshKerasJsonFiles(): Promise<string[]> {
  const weights = await vscode.workspace.findFiles('**/*.{h5,hdf5}', '**/node_modules/**', MAX_WEIGHT_FILES);
  const jsons = new Set<string>();
  for (const w of weights) {
    const j = findKerasJsonFor(w.fsPath);
    if (j) jsons.add(j);
  }
  const list = [...jsons].sort();
  await vscode.commands.executeCommand('setContext', KERAS_JSON_CONTEXT, list);
  return list;
}

/** Schedules the first search after activation (unref'd: it never keeps a process alive). */
export function scheduleKerasJsonScan(ctx: Ctx, delayMs = 3000): void {
  const timer = setTimeout(() => {
    refreshKerasJsonFiles().catch((e: unknown) => ctx.log.warn(`listing Keras to_json files: ${(e as Error).message}`));
  }, delayMs);
  timer.unref?.();
  ctx.own({ dispose: () => clearTimeout(timer) });
}
