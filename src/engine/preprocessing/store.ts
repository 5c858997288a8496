/**
 * Stored preprocessing profiles: one small JSON per model in the reports folder, named like the reports
 *
 *   <reports folder>/preprocessing/<model name>-<model sha256, 12 hex>.preprocessing.json
 *
 * (in a sub-folder, as the RU decoders are, so that nothing that lists the reports mistakes one for a report)
 * (<model name>: the folder of a model.json, else the file name without extension, as in the report names). The
 * extension's reports folder is `<workspace folder>/.infodiscard` by default (setting infodiscard.reportsFolder);
 * the CLI looks in the folder of its --out report and in ./.infodiscard, so a profile chosen in the editor is the
 * one `infodiscard analyze` uses from the workspace root. A model whose file changed (a retrained checkpoint) keeps
 * its profile: lookup falls back to a file saved for the same model path, then to one saved for a model of the same
 * series (same folder, same name once its numbers are taken out: the other checkpoints of a training run). Writes are atomic (temp file + rename).
 * Plain Node: no tfjs, no vscode.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors';
import type { PreprocessingProfile } from '../report';
import { validateProfile } from './presets';

export const PROFILE_SUFFIX = '.preprocessing.json';
/** The extension's default reports folder (package.json infodiscard.reportsFolder), where the CLI also looks. */
export const DEFAULT_REPORTS_FOLDER = '.infodiscard';
/** The sub-folder of a reports folder that holds the profiles. */
export const PROFILES_FOLDER = 'preprocessing';

export interface StoredProfile {
  kind: 'infodiscard-preprocessing';
  version: 1;
  /** Absolute path of the model the profile was saved for. */
  modelPath: string;
  modelSha256: string;
  savedAt: string;
  profile: PreprocessingProfile;
}

/** A model's name in file names: as src/extension/reportStore.ts names reports. */
export function modelFileStem(modelPath: string): string {
  const parts = modelPath.split(/[\\/]/).filter(Boolean);
  const last = parts[parts.length - 1] ?? 'model';
  const name = parts.length > 1 && /^model\.json$/i.test(last) ? parts[parts.length - 2] : last.replace(/\.[^.]+$/, '') || 'model';
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[.]+/, '').slice(0, 40) || 'model';
}

export function profileFileName(modelPath: string, modelSha: string): string {
  return `${modelFileStem(modelPath)}-${modelSha.slice(0, 12)}${PROFILE_SUFFIX}`;
}

/** The profile file of a model in a reports folder. */
export function profilePath(reportsFolder: string, modelPath: string, modelSha: string): string {
  return path.join(reportsFolder, PROFILES_FOLDER, profileFileName(modelPath, modelSha));
}

/** Saves the profile for the model; returns the file written. */
export function writeStoredProfile(reportsFolder: string, modelPath: string, modelSha: string, profile: PreprocessingProfile): string {
  const file = profilePath(reportsFolder, modelPath, modelSha);
  mkdirSync(path.dirname(file), { recursive: true });
  const stored: StoredProfile = {
    kind: 'infodiscard-preprocessing',
    version: 1,
    modelPath: path.resolve(modelPath),
    modelSha256: modelSha,
    savedAt: new Date().toISOString(),
    profile,
  };
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(stored, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}

/** Reads one stored profile; a broken file is a UserError that names it and says to fix or delete it. */
export function readStoredProfile(file: string): StoredProfile {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read the preprocessing profile (${(e as Error).message.split('\n')[0]}); fix or delete the file`, file);
  }
  const s = v as Partial<StoredProfile>;
  return {
    kind: 'infodiscard-preprocessing',
    version: 1,
    modelPath: String(s.modelPath ?? ''),
    modelSha256: String(s.modelSha256 ?? ''),
    savedAt: String(s.savedAt ?? ''),
    profile: validateProfile(s.profile, file),
  };
}

export interface FoundProfile {
  file: string;
  stored: StoredProfile;
  /** How it matched: this exact model file, the same path with other contents, or a sibling model. */
  match: 'exact' | 'same-path' | 'sibling';
}

/**
 * The stored profile for a model, searched in the reports folders `folders` in order: the exact file name first (in every folder),
 * then one saved for the same model path, then one saved for a model in the same folder with the same extension
 * (newest first). Unreadable files other than the exact one are passed over.
 */
export function findStoredProfile(folders: string[], modelPath: string, modelSha: string): FoundProfile | null {
  for (const folder of folders) {
    const file = profilePath(folder, modelPath, modelSha);
    if (exists(file)) return { file, stored: readStoredProfile(file), match: 'exact' };
  }
  const abs = path.resolve(modelPath);
  const candidates: { file: string; stored: StoredProfile }[] = [];
  for (const folder of folders) {
    let names: string[];
    try {
      names = readdirSync(path.join(folder, PROFILES_FOLDER)).filter((n) => n.endsWith(PROFILE_SUFFIX));
    } catch {
      continue;
    }
    for (const n of names) {
      const file = path.join(folder, PROFILES_FOLDER, n);
      try {
        candidates.push({ file, stored: readStoredProfile(file) });
      } catch {
        // a broken file of another model: not ours to report
      }
    }
  }
  const newest = (a: { stored: StoredProfile }, b: { stored: StoredProfile }) => b.stored.savedAt.localeCompare(a.stored.savedAt);
  const samePath = candidates.filter((c) => path.resolve(c.stored.modelPath) === abs).sort(newest);
  if (samePath.length > 0) return { ...samePath[0], match: 'same-path' };
  // A checkpoint series: the same folder and extension, names equal once their numbers are taken out
  // (saved-model-10-0.98 and saved-model-20-0.99; epoch-00 and epoch-08), so unrelated models in one folder do not.
  const series = (p: string) => path.basename(p).toLowerCase().replace(/\d+(\.\d+)?/g, '#');
  const siblings = candidates
    .filter((c) => path.dirname(path.resolve(c.stored.modelPath)) === path.dirname(abs) && series(c.stored.modelPath) === series(abs) && !/model\.json$/i.test(abs))
    .sort(newest);
  if (siblings.length > 0) return { ...siblings[0], match: 'sibling' };
  return null;
}

/** The profile a found file gives; the source says so when it was saved for another version or a sibling. */
export function profileFromFound(found: FoundProfile): PreprocessingProfile {
  const p = found.stored.profile;
  if (found.match === 'exact') return p;
  const origin = found.match === 'same-path' ? 'an earlier version of this file' : path.basename(found.stored.modelPath);
  return { ...p, source: `${p.source.replace(/ \(saved for .*\)$/, '')} (saved for ${origin})` };
}

function exists(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}
