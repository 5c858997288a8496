/**
 * The checkpoints of a training run in one folder, for "Compare Checkpoints in Folder…": which files are models,
 * which epoch each is, and in what order to analyse and chart them. Plain Node (no vscode), so it is unit-tested
 * as it is.
 *
 * A checkpoint is a model file directly in the folder (.h5, .hdf5, .keras, .onnx, or a TensorFlow.js model JSON), or
 * a subfolder holding a model.json (named by the subfolder: `ckpt_5/model.json` is "ckpt_5").
 *
 * Epochs come from the names: a named number first (`epoch-03`, `epoch3`, `ep_12`, `ckpt-5`, `checkpoint_7`,
 * `model.epoch10`, `step_400`, `iter-2`), else the first integer that is not part of a fractional metric
 * (`saved-model-05-0.98` is 5, `weights.07-0.43` is 7). When the names of a run all have the same integers, the first
 * one that differs between them is the epoch (`resnet50_03` and `resnet50_07`: 3 and 7, not 50).
 *
 * Files named unlike the run's (a `best.h5` or `mnist1.h5` beside `saved-model-NN-0.NN.hdf5` files) are left out and
 * said so; so are files without an epoch number among files with one. When no name carries an epoch, the
 * checkpoints are taken in natural name order and numbered 1, 2, 3 (axis 'order').
 */
import type { Dirent } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { access, lstat, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../engine/errors';
import type { CheckpointsView } from '../protocol';

/** Model files the engine opens (one loader each): shown in pickers, found for Compare and Compare Checkpoints. */
export const MODEL_EXTENSIONS = ['json', 'h5', 'hdf5', 'keras', 'onnx'];

/** A model in the folder, before ordering. */
export interface ModelEntry {
  /** The file to analyse (for a subfolder, its model.json). */
  path: string;
  /** File name, or the subfolder's name. */
  name: string;
}

export interface Checkpoint extends ModelEntry {
  /** The epoch from the name; with axis 'order', the 1-based place in name order. */
  epoch: number;
  /** Legend label: the name without its extension (kept where two names differ only in it). */
  label: string;
}

export type EpochAxis = CheckpointsView['axis'];

export interface CheckpointOrder {
  /** In epoch order (name order among equal epochs). */
  checkpoints: Checkpoint[];
  /** 'epoch': the x values are epochs read from the names; 'order': no name had one, x is the place in name order. */
  axis: EpochAxis;
  /** Models in the folder that are not charted, and why (one line each, naming the file). */
  leftOut: { name: string; reason: string }[];
  /** Epochs that several checkpoints share (all kept, in name order). */
  duplicates: { epoch: number; names: string[] }[];
}

export interface CheckpointListing extends CheckpointOrder {
  folder: string;
  /** Files that looked like models but could not be read, and why. */
  skipped: { path: string; reason: string }[];
}

/** Natural order: "epoch-9" before "epoch-10", case-insensitive, then by code points for a total order. */
let collator: Intl.Collator | undefined;
export function naturalCompare(a: string, b: string): number {
  // Made on first use: creating a collator takes milliseconds, and this module loads with the extension.
  collator ??= new Intl.Collator('en', { numeric: true, sensitivity: 'base' });
  return collator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);
}

/** The name without a model extension (".h5", ".hdf5", ".keras", ".onnx", ".json"). */
export function stem(name: string): string {
  const ext = path.extname(name).slice(1).toLowerCase();
  return MODEL_EXTENSIONS.includes(ext) ? name.slice(0, -(ext.length + 1)) : name;
}

/** Words that name the number after them: an epoch first, then the checkpoint's own counters. */
const NAMED_EPOCH = [
  /(?:^|[^a-z])epochs?[-_. ]?(\d+)(?![\d.]*\d)/i,
  /(?:^|[^a-z])ep[-_. ]?(\d+)(?![\d.]*\d)/i,
  /(?:^|[^a-z])(?:checkpoint|ckpt|chkpt)[-_. ]?(\d+)(?![\d.]*\d)/i,
  /(?:^|[^a-z])(?:step|iter|iteration)s?[-_. ]?(\d+)(?![\d.]*\d)/i,
];

/** A number as it appears in a name: an integer, or a fractional metric ("0.98", "1e-05", "9.8e-06"). */
const NUMBER = /\d+(?:\.\d+)?(?:e[-+]?\d+)?/gi;

/** The epoch a name gives with a word before it (`epoch-03`, `ckpt_5`, `model.epoch10`), if any. */
export function namedEpoch(name: string): number | undefined {
  const s = stem(name);
  for (const re of NAMED_EPOCH) {
    const m = re.exec(s);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** The integers in a name, in order, leaving out fractional metrics ("saved-model-05-0.98" gives [5]). */
export function integerGroups(name: string): number[] {
  const out: number[] = [];
  for (const m of stem(name).matchAll(NUMBER)) if (/^\d+$/.test(m[0])) out.push(Number(m[0]));
  return out;
}

/** The epoch of one name on its own: a named number, else the first integer that is not a fractional metric. */
export function parseEpoch(name: string): number | undefined {
  return namedEpoch(name) ?? integerGroups(name)[0];
}

/**
 * The epochs of the names of one run: named numbers where there are any; else, where every name has the same
 * count of integers, the first position whose integer differs between the names; else the first integer.
 */
export function epochsOf(names: string[]): (number | undefined)[] {
  const named = names.map(namedEpoch);
  const groups = names.map(integerGroups);
  const rest = names.map((_, i) => i).filter((i) => named[i] === undefined && groups[i].length > 0);
  let position = 0;
  if (rest.length > 1 && rest.every((i) => groups[i].length === groups[rest[0]].length)) {
    const k = groups[rest[0]].length;
    for (let p = 0; p < k; p++) {
      if (rest.some((i) => groups[i][p] !== groups[rest[0]][p])) {
        position = p;
        break;
      }
    }
  }
  return names.map((_, i) => named[i] ?? groups[i][position] ?? groups[i][0]);
}

/** The shape of a name with its numbers blanked ("saved-model-#-#"): checkpoints of one run share it. */
export function nameTemplate(name: string): string {
  return stem(name).toLowerCase().replace(NUMBER, '#');
}

/**
 * Which models are the run's checkpoints, their epochs and order. The run is the largest group of names of the same
 * shape (numbers blanked), when it has two or more members; otherwise every model is.
 */
export function orderCheckpoints(models: ModelEntry[]): CheckpointOrder {
  const leftOut: CheckpointOrder['leftOut'] = [];
  const sorted = [...models].sort((a, b) => naturalCompare(a.name, b.name));
  // The run: the largest group of one name shape, if it has two or more (ties: the one with named epochs, then the first).
  const byTemplate = new Map<string, ModelEntry[]>();
  for (const m of sorted) {
    const t = nameTemplate(m.name);
    byTemplate.set(t, [...(byTemplate.get(t) ?? []), m]);
  }
  let run = sorted;
  let best: ModelEntry[] | undefined;
  for (const group of byTemplate.values()) {
    if (group.length < 2) continue;
    const named = (g: ModelEntry[]): boolean => g.some((m) => namedEpoch(m.name) !== undefined);
    if (!best || group.length > best.length || (group.length === best.length && named(group) && !named(best))) best = group;
  }
  if (best && best.length < sorted.length) {
    run = best;
    const shape = nameTemplate(best[0].name);
    for (const m of sorted) if (!best.includes(m)) leftOut.push({ name: m.name, reason: `not named like the other checkpoints (${shape})` });
  }

  const epochs = epochsOf(run.map((m) => m.name));
  const withEpoch = run.filter((_, i) => epochs[i] !== undefined);
  let axis: EpochAxis = 'epoch';
  let placed: { entry: ModelEntry; epoch: number }[];
  if (withEpoch.length >= 2) {
    placed = [];
    run.forEach((entry, i) => {
      const epoch = epochs[i];
      if (epoch === undefined) leftOut.push({ name: entry.name, reason: 'no epoch number in its name (the others have one)' });
      else placed.push({ entry, epoch });
    });
    // Stable: name order among equal epochs.
    placed.sort((a, b) => a.epoch - b.epoch);
  } else {
    axis = 'order';
    placed = run.map((entry, i) => ({ entry, epoch: i + 1 }));
  }

  const stems = placed.map((p) => stem(p.entry.name).toLowerCase());
  const checkpoints = placed.map(({ entry, epoch }, i) => ({
    ...entry,
    epoch,
    label: stems.filter((s) => s === stems[i]).length > 1 ? entry.name : stem(entry.name),
  }));
  const duplicates: CheckpointOrder['duplicates'] = [];
  if (axis === 'epoch') {
    for (const c of checkpoints) {
      const same = checkpoints.filter((o) => o.epoch === c.epoch);
      if (same.length > 1 && !duplicates.some((d) => d.epoch === c.epoch)) duplicates.push({ epoch: c.epoch, names: same.map((o) => o.name) });
    }
  }
  return { checkpoints, axis, leftOut, duplicates };
}

/** Whether a JSON file in the folder is a TensorFlow.js model (and not a history, config or report file). */
function isTfjsModel(json: unknown): boolean {
  return !!json && typeof json === 'object' && ('modelTopology' in json || 'weightsManifest' in json);
}

/** Why a model file cannot be analysed ('missing': there is no such file), or undefined when it can be read. */
async function unreadable(file: string): Promise<string | undefined> {
  try {
    const st = await stat(file);
    if (!st.isFile()) return 'is not a file';
    if (st.size === 0) return 'is empty';
    await access(file, fsConstants.R_OK);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return (await lstat(file).then(() => true, () => false)) ? 'cannot be read (a broken link)' : 'missing';
    return code === 'EACCES' || code === 'EPERM' ? 'cannot be read (permission denied)' : `cannot be read (${code ?? (e as Error).message})`;
  }
}

/** The model files in `folder`: files with a model extension, and subfolders one level down with a model.json. */
export async function findModels(folder: string): Promise<{ models: ModelEntry[]; skipped: CheckpointListing['skipped'] }> {
  let entries: Dirent[];
  try {
    const st = await stat(folder);
    if (!st.isDirectory()) throw new UserError('is not a folder: pick a folder of checkpoints', folder);
    entries = await readdir(folder, { withFileTypes: true });
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError('cannot be read; check that the folder exists', folder);
  }
  const models: ModelEntry[] = [];
  const skipped: CheckpointListing['skipped'] = [];
  for (const entry of entries.sort((a, b) => naturalCompare(a.name, b.name))) {
    if (entry.name.startsWith('.')) continue;
    const full = path.join(folder, entry.name);
    let isDir = entry.isDirectory();
    if (entry.isSymbolicLink()) {
      try {
        isDir = (await stat(full)).isDirectory();
      } catch {
        // A broken link: judged by its name below.
      }
    }
    if (isDir) {
      const json = path.join(full, 'model.json');
      const problem = await unreadable(json);
      if (problem === undefined) models.push({ path: json, name: entry.name });
      else if (problem !== 'missing') skipped.push({ path: json, reason: problem });
      continue;
    }
    const ext = path.extname(entry.name).slice(1).toLowerCase();
    if (!MODEL_EXTENSIONS.includes(ext)) continue;
    const problem = await unreadable(full);
    if (problem) {
      skipped.push({ path: full, reason: problem });
      continue;
    }
    if (ext === 'json') {
      // Only TensorFlow.js models: a folder of checkpoints also holds histories, configs, reports.
      let json: unknown;
      try {
        json = JSON.parse(await readFile(full, 'utf8'));
      } catch (e) {
        if (/^model\.json$/i.test(entry.name)) skipped.push({ path: full, reason: `is not valid JSON (${(e as Error).message})` });
        continue;
      }
      if (!isTfjsModel(json)) continue;
    }
    models.push({ path: full, name: entry.name });
  }
  return { models, skipped };
}

/** The checkpoints in `folder`, in epoch order. Throws a one-line UserError naming the folder when it has fewer than two. */
export async function listCheckpoints(folder: string): Promise<CheckpointListing> {
  const { models, skipped } = await findModels(folder);
  if (models.length < 2) {
    const found = models.length === 0 ? 'holds no model files' : `holds one model file only (${models[0].name})`;
    const bad = skipped.length ? `, ${skipped.length} unreadable` : '';
    throw new UserError(`${found}${bad}; Compare Checkpoints needs two or more: .h5, .hdf5, .keras, .onnx or TensorFlow.js model.json files, or subfolders with a model.json`, folder);
  }
  return { folder, skipped, ...orderCheckpoints(models) };
}
