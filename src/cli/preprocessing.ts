/**
 * The CLI's preprocessing: which profile a run uses and where it came from, and the degenerate-output check before
 * the long run. Order: --preset / --input-range / --normalize (source 'cli'), else the model's stored profile
 * (./.infodiscard or the --out folder, see src/engine/preprocessing/store.ts), else what the model file says
 * (detected), else [0,1] (default). --bgr sets the channel order of whichever profile that is.
 */
import path from 'node:path';
import { selectBackend } from '../engine/backend';
import { UserError } from '../engine/errors';
import { modelSha256 } from '../engine/modelHash';
import type { PreprocessingProfile } from '../engine/report';
import { customProfile, DEFAULT_REPORTS_FOLDER, findStoredProfile, presetProfile, profileFromFound, profileLabel, profileSettings } from '../engine/preprocessing';
import { checkPreprocessingFiles, cliFlagsFor, type PreprocessingCheck } from '../engine/preprocessing/check';
import type { AnalyzeArgs } from './args';

export interface CliProfile {
  profile: PreprocessingProfile;
  /** The stored file it was read from, when it was. */
  file?: string;
}

/** The folders where the CLI looks for a stored profile: the --out report's folder, then ./.infodiscard. */
export function profileFolders(out: string): string[] {
  return [...new Set([path.dirname(path.resolve(out)), path.resolve(DEFAULT_REPORTS_FOLDER)])];
}

/** The profile from flags or the store; null when neither says anything (then the model file is asked). */
export async function explicitOrStoredProfile(args: AnalyzeArgs): Promise<CliProfile | null> {
  const pp = args.preprocessing;
  const order = pp.bgr ? 'bgr' : undefined;
  if (pp.preset !== undefined) {
    const p = presetProfile(pp.preset, 'cli');
    return { profile: order ? { ...p, channelOrder: order, preset: p.preset === 'caffe-bgr' ? p.preset : 'custom' } : p };
  }
  if (args.settings.inputRange || args.settings.normalize) {
    return { profile: customProfile({ inputRange: args.settings.inputRange, normalize: args.settings.normalize, channelOrder: order ?? 'rgb' }, 'cli') };
  }
  let sha: string;
  try {
    sha = await modelSha256(args.model);
  } catch {
    return null; // the loader reports a missing or unreadable model with its own message
  }
  const found = findStoredProfile(profileFolders(args.out), args.model, sha);
  if (!found) return null;
  const p = profileFromFound(found);
  return { profile: order ? { ...p, channelOrder: order } : p, file: found.file };
}

/**
 * Resolves the profile, runs the check and returns the settings to analyse with. Throws a one-line UserError (exit 2)
 * when the chosen profile is degenerate and an alternative is not, unless --force. `say` prints the profile line.
 */
export async function resolveAndCheck(args: AnalyzeArgs, say: (line: string) => void): Promise<{ settings: AnalyzeArgs['settings']; check: PreprocessingCheck }> {
  await selectBackend(args.settings.backend);
  const given = await explicitOrStoredProfile(args);
  // The check loads the model; what the file says is known afterwards (detected profiles need the model loaded).
  let profile = given?.profile;
  let check;
  if (profile) {
    check = await checkPreprocessingFiles({ modelPath: args.model, weightsPath: args.weights, images: args.images, profile, inputSize: args.inputSize });
  } else {
    const first = await checkPreprocessingFiles({ modelPath: args.model, weightsPath: args.weights, images: args.images, profile: presetProfile('[0,1]', 'default'), inputSize: args.inputSize });
    const detected = first.detected;
    profile = detected ?? presetProfile('[0,1]', 'default');
    if (args.preprocessing.bgr) profile = { ...profile, channelOrder: 'bgr', preset: profile.preset === 'caffe-bgr' ? profile.preset : 'custom' };
    check = detected || args.preprocessing.bgr ? await checkPreprocessingFiles({ modelPath: args.model, weightsPath: args.weights, images: args.images, profile, inputSize: args.inputSize }) : first;
  }
  if (check.recommended) {
    const fix = cliFlagsFor(check.recommended.profile);
    if (!args.preprocessing.force) {
      throw new UserError(`${check.message}: rerun with ${fix} (or --force to keep ${profileLabel(profile)})`, args.model);
    }
    say(`Warning: ${check.message} (kept: --force)`);
  }
  if (!check.recommended && check.message) say(`Note: ${check.message}`);
  say(`Preprocessing: ${profileLabel(profile)} (${profile.source}${given?.file ? `; ${given.file}` : ''})`);
  const top = check.chosen.top
    .slice(0, 4)
    .map((t, i) => `#${i + 1} ${t.slice(0, 2).map((p) => `${p.index}:${p.score.toFixed(2)}`).join(' ')}`)
    .join(', ');
  if (top) say(`Top predictions at ${profileLabel(profile)} (class:score): ${top}${check.images > 4 ? ', ...' : ''}`);
  return { settings: { ...args.settings, ...profileSettings(profile) }, check };
}
