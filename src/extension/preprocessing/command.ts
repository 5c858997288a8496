/**
 * "Edit Preprocessing…" (infodiscard.editPreprocessing): from the Explorer / editor on a model file, or from the
 * panel header's chip (with the report shown, whose model and images are used for the check). Asks again with the
 * current profile first, stores the answer and offers to re-run the analysis with it.
 */
import { readFile } from 'node:fs/promises';
import * as vscode from 'vscode';
import { parseReport } from '../../engine/reportFile';
import { profileLabel } from '../../engine/preprocessing/presets';
import type { Ctx } from '../ctx';
import { readSettings } from '../config';
import { chooseImages } from '../inputs';
import { showError } from '../notify';
import { askProfile, storedProfile } from './prompt';

export interface EditPreprocessingArgs {
  /** The report a panel shows: its model and images. */
  reportPath?: string;
}

export async function editPreprocessing(ctx: Ctx, arg?: vscode.Uri | EditPreprocessingArgs, rerun?: (model: vscode.Uri) => Promise<void>): Promise<void> {
  try {
    let model: vscode.Uri | undefined;
    let images: string[] | undefined;
    if (arg instanceof vscode.Uri) model = arg;
    else if (arg?.reportPath) {
      const report = parseReport(await readFile(arg.reportPath, 'utf8'), arg.reportPath);
      model = vscode.Uri.file(report.model.path);
      images = report.images.map((im) => im.path);
    }
    if (!model) {
      const picked = await vscode.window.showOpenDialog({ canSelectMany: false, title: 'infodiscard: the model whose preprocessing to edit' });
      model = picked?.[0];
    }
    if (!model) return;
    const settings = readSettings(model);
    if (!images) {
      const choice = await chooseImages(ctx, settings.images, model);
      if (!choice) return;
      images = choice.files.map((f) => f.path);
    }
    const current = (await storedProfile(ctx, settings, model)) ?? undefined;
    const profile = await askProfile(ctx, settings, model, images, current);
    if (!profile) return;
    const again = 'Re-run Analysis';
    const pick = await vscode.window.showInformationMessage(`infodiscard: preprocessing of this model is now ${profileLabel(profile)}; re-run the analysis to apply it.`, again);
    if (pick === again && rerun) await rerun(model);
  } catch (e) {
    showError(ctx, e);
  }
}
