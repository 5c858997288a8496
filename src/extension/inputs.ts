/**
 * Which images an analysis uses: the `infodiscard.images` setting (a folder, file or glob, workspace-relative) when
 * set; otherwise a quick pick of recent choices, "Browse…" and the sample images shipped with the extension (the
 * default item, so the first right-click on a model.json works with one Enter).
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import * as vscode from 'vscode';
import { UserError } from '../engine/errors';
import { folderImages, IMAGE_EXTENSIONS, skippedFilesWarning, type SkippedImage } from '../engine/imagePaths';
import { SECTION, SettingError } from './config';
import type { Ctx } from './ctx';
import type { ImageFile } from './reportStore';

const RECENT_KEY = 'infodiscard.recentImages';
const MAX_RECENT = 5;
/** Above this many images, ask before starting (each image is one optimisation per layer). */
const CONFIRM_ABOVE = 50;

export interface ImageChoice {
  /** The image files, sorted, with size and mtime (part of the report's settings key). */
  files: ImageFile[];
  /** For the log and messages: the folder, glob or "sample images". */
  label: string;
  /** Files in the chosen folders that look like images but cannot be read (said once per run, not skipped silently). */
  skipped?: SkippedImage[];
}

/** The one-line note about `choice.skipped`, or undefined. */
export function skippedImagesNote(choice: ImageChoice): string | undefined {
  return skippedFilesWarning(choice.skipped ?? []);
}

const isImage = (f: string): boolean => IMAGE_EXTENSIONS.includes(path.extname(f).toLowerCase());
const hasGlob = (s: string): boolean => /[*?{[]/.test(s);

export function sampleImagesFolder(ctx: Ctx): string {
  return vscode.Uri.joinPath(ctx.extensionUri, 'media', 'sample', 'images').fsPath;
}

/** Image files of a folder (non-recursive, like the engine; `skipped` gets the ones it cannot read) or the file itself. */
async function expandPath(p: string, skipped: SkippedImage[] = []): Promise<string[]> {
  const st = await stat(p);
  if (!st.isDirectory()) return [p];
  const found = folderImages(p);
  skipped.push(...found.skipped);
  return found.files;
}

async function withStats(files: string[]): Promise<ImageFile[]> {
  const unique = [...new Set(files)].sort();
  return Promise.all(unique.map(async (f) => {
    const st = await stat(f);
    return { path: f, size: st.size, mtimeMs: st.mtimeMs };
  }));
}

/** Resolves an image setting's value: a glob (workspace search), or a folder/file path (relative to the workspace folder). */
export async function imagesFromSetting(value: string, scope: vscode.Uri | undefined, setting: 'images' | 'trainImages' = 'images'): Promise<ImageChoice> {
  const folder = (scope && vscode.workspace.getWorkspaceFolder(scope)) ?? vscode.workspace.workspaceFolders?.[0];
  const name = `${SECTION}.${setting}`;
  let files: string[];
  const skipped: SkippedImage[] = [];
  if (hasGlob(value)) {
    if (!folder && !path.isAbsolute(value)) throw new SettingError(name, `is a glob ("${value}"), which needs an open folder`);
    const pattern = folder ? new vscode.RelativePattern(folder, value) : value;
    files = (await vscode.workspace.findFiles(pattern, '**/node_modules/**', 10_000)).map((u) => u.fsPath).filter(isImage);
  } else {
    const p = path.isAbsolute(value) || !folder ? value : path.join(folder.uri.fsPath, value);
    try {
      files = (await expandPath(p, skipped)).filter(isImage);
    } catch {
      throw new SettingError(name, `names "${value}", which does not exist; give a folder, an image or a glob relative to the workspace folder`);
    }
  }
  if (files.length === 0) throw new SettingError(name, `("${value}") matches no image files (${IMAGE_EXTENSIONS.join(' ')})`);
  return { files: await withStats(files), label: value, ...(skipped.length ? { skipped } : {}) };
}

/** The folder of the training images shipped for the sample model (240 Fashion-MNIST training-set images). */
export function sampleTrainFolder(ctx: Ctx): string {
  return vscode.Uri.joinPath(ctx.extensionUri, 'media', 'sample', 'train').fsPath;
}

/**
 * The RU decoders' training images beyond the analysis images (the engine always trains on those too): the
 * `infodiscard.trainImages` setting when set; else, for the shipped sample images, the shipped training images;
 * else none (undefined: the decoders train on the analysis images alone).
 */
export async function trainImagesFor(ctx: Ctx, setting: string, scope: vscode.Uri | undefined, analysis: ImageChoice): Promise<ImageFile[] | undefined> {
  if (setting) return (await imagesFromSetting(setting, scope, 'trainImages')).files;
  const sample = sampleImagesFolder(ctx);
  if (analysis.files.length === 0 || !analysis.files.every((f) => path.dirname(f.path) === sample)) return undefined;
  try {
    const files = (await expandPath(sampleTrainFolder(ctx))).filter(isImage);
    return files.length ? await withStats(files) : undefined;
  } catch {
    return undefined; // not shipped (a trimmed install): the analysis images alone
  }
}

/** The deepest folder that holds every one of `files`. */
function commonFolder(files: string[]): string | undefined {
  if (files.length === 0) return undefined;
  let dir = path.dirname(files[0]);
  for (const f of files) {
    while (dir !== path.dirname(dir) && !(path.dirname(f) === dir || path.dirname(f).startsWith(dir + path.sep))) dir = path.dirname(dir);
  }
  return dir;
}

/** A file with its size and mtime (part of a report's key), or undefined when it is not a file. */
export async function fileInfo(file: string): Promise<ImageFile | undefined> {
  const st = await stat(file).catch(() => undefined);
  return st?.isFile() ? { path: file, size: st.size, mtimeMs: st.mtimeMs } : undefined;
}

/** Name of the sidecar file looked for beside the images when `infodiscard.boxesFile` is empty. */
export const DEFAULT_BOXES_FILE = 'boxes.json';

/**
 * Concentration's object regions: the `infodiscard.boxesFile` setting (workspace-relative) when set, which must
 * exist; else `boxes.json` in the images' folder (their common folder) if there is one; else undefined.
 */
export async function boxesFileFor(setting: string, scope: vscode.Uri | undefined, analysis: ImageChoice): Promise<ImageFile | undefined> {
  let file: string;
  if (setting) {
    const folder = (scope && vscode.workspace.getWorkspaceFolder(scope)) ?? vscode.workspace.workspaceFolders?.[0];
    file = path.isAbsolute(setting) || !folder ? path.resolve(setting) : path.join(folder.uri.fsPath, setting);
  } else {
    const dir = commonFolder(analysis.files.map((f) => f.path));
    if (!dir) return undefined;
    file = path.join(dir, DEFAULT_BOXES_FILE);
  }
  const found = await fileInfo(file);
  if (found) return found;
  if (setting) {
    throw new SettingError(`${SECTION}.boxesFile`, `names "${setting}", which is not a file; give a JSON file of object boxes, relative to the workspace folder (or leave it empty to use ${DEFAULT_BOXES_FILE} beside the images)`);
  }
  return undefined;
}

interface PickItem extends vscode.QuickPickItem {
  action: 'recent' | 'browse' | 'sample';
  paths?: string[];
}

function recentLabel(paths: string[]): string {
  return paths.length === 1 ? vscode.workspace.asRelativePath(paths[0]) : `${paths.length} files in ${vscode.workspace.asRelativePath(path.dirname(paths[0]))}`;
}

/** The images in `paths` (files and folders, expanded); a UserError naming a missing path, or when none is an image. */
export async function imagesAt(paths: string[], label: string): Promise<ImageChoice> {
  const files: string[] = [];
  const skipped: SkippedImage[] = [];
  for (const p of paths) {
    try {
      files.push(...(await expandPath(p, skipped)).filter(isImage));
    } catch {
      throw new UserError('no such file or folder; pick image files (PNG, JPEG, BMP, GIF, TIFF, WebP) or a folder of them', p);
    }
  }
  if (files.length === 0) throw new UserError(`${label} has no images (${IMAGE_EXTENSIONS.join(' ')})`);
  return { files: await withStats(files), label, ...(skipped.length ? { skipped } : {}) };
}

/** Asks which images to use. Undefined when the user dismisses the pick. */
async function askImages(ctx: Ctx): Promise<{ paths: string[]; label: string } | undefined> {
  const state = ctx.extension.workspaceState;
  const recent = (state.get<string[][]>(RECENT_KEY) ?? []).filter((r) => Array.isArray(r) && r.length > 0);
  const sample = sampleImagesFolder(ctx);
  const items: PickItem[] = [
    ...recent.map((paths): PickItem => ({ label: `$(history) ${recentLabel(paths)}`, description: 'recent', action: 'recent', paths })),
    { label: '$(file-media) Sample images', description: 'Fashion-MNIST, shipped with infodiscard', action: 'sample' },
    { label: '$(folder-opened) Browse…', description: 'a folder or image files (PNG, JPEG, BMP, GIF, TIFF, WebP)', action: 'browse' },
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title: 'infodiscard: images to analyse with',
    placeHolder: 'Tip: set "infodiscard.images" to a folder or glob to skip this question',
    ignoreFocusOut: true,
  });
  if (!picked) return undefined;
  if (picked.action === 'sample') return { paths: [sample], label: 'sample images' };
  let paths = picked.paths;
  if (picked.action === 'browse') {
    const uris = await vscode.window.showOpenDialog({
      canSelectFiles: true,
      canSelectFolders: true,
      canSelectMany: true,
      openLabel: 'Use these images',
      filters: { Images: IMAGE_EXTENSIONS.map((e) => e.slice(1)) },
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    if (!uris || uris.length === 0) return undefined;
    paths = uris.map((u) => u.fsPath);
  }
  const chosen = paths ?? [];
  await state.update(RECENT_KEY, [chosen, ...recent.filter((r) => JSON.stringify(r) !== JSON.stringify(chosen))].slice(0, MAX_RECENT));
  return { paths: chosen, label: recentLabel(chosen) };
}

/** The images for an analysis of `model`, or undefined when the user cancelled. Throws UserError for bad choices. */
export async function chooseImages(ctx: Ctx, setting: string, model: vscode.Uri | undefined): Promise<ImageChoice | undefined> {
  let choice: ImageChoice;
  if (setting) {
    choice = await imagesFromSetting(setting, model);
  } else {
    const asked = await askImages(ctx);
    if (!asked) return undefined;
    choice = await imagesAt(asked.paths, asked.label);
  }
  if (choice.files.length > CONFIRM_ABOVE) {
    const go = await vscode.window.showWarningMessage(
      `Analyse ${choice.files.length} images? Every image costs one optimisation per layer.`,
      { modal: true },
      'Analyse',
    );
    if (go !== 'Analyse') return undefined;
  }
  return choice;
}
