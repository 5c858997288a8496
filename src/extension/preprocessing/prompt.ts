/**
 * A model's preprocessing profile in the editor (issue 13 §1): the first analysis of a model asks for it in a quick
 * pick (the detected profile first, with its source, then the presets, the workspace setting, "Custom…"), each
 * choice showing the model's top predictions on the chosen images (the check runs in the worker); when the chosen
 * one gives degenerate outputs and another does not, a warning offers "Use <that> (recommended)" / "Keep" /
 * "Edit…". The answer is stored beside the reports (src/engine/preprocessing/store.ts) and used from then on, and
 * "Edit preprocessing…" (command or the panel header's chip) asks again. The workspace setting
 * infodiscard.inputRange stays the fallback default when the model file says nothing.
 */
import * as vscode from 'vscode';
import { UserError } from '../../engine/errors';
import type { PreprocessingProfile } from '../../engine/report';
import { customProfile, presetNameOf, PRESETS, presetProfile, profileLabel } from '../../engine/preprocessing/presets';
import { findStoredProfile, profileFromFound, writeStoredProfile } from '../../engine/preprocessing/store';
import type { PreprocessingCheck, ProfileCheck } from '../../engine/preprocessing/check';
import type { PreprocessingOutcome } from '../../protocol';
import type { ExtensionSettings } from '../config';
import type { Ctx } from '../ctx';
import { reportsFolderFor } from '../reportStore';

export const EDIT_PREPROCESSING_COMMAND = 'infodiscard.editPreprocessing';

/** The profile the workspace setting gives (infodiscard.inputRange, and a normalisation if the settings hold one). */
export function settingProfile(settings: ExtensionSettings): PreprocessingProfile | null {
  const a = settings.analysis;
  if (!a.inputRange && !a.normalize) return null;
  return customProfile({ inputRange: a.inputRange, normalize: a.normalize }, 'setting infodiscard.inputRange');
}

/**
 * Whether the user set infodiscard.inputRange (user, workspace or folder settings). VS Code reads an unset setting as
 * its package.json default "0,1", which the prompt must not present as the user's "workspace setting".
 */
export function inputRangeIsSet(scope: vscode.Uri | undefined): boolean {
  const config = vscode.workspace.getConfiguration('infodiscard', scope);
  const i = typeof config.inspect === 'function' ? config.inspect<string>('inputRange') : undefined;
  if (!i) return true;
  return [i.globalValue, i.workspaceValue, i.workspaceFolderValue, i.globalLanguageValue, i.workspaceLanguageValue, i.workspaceFolderLanguageValue].some((v) => v !== undefined);
}

const sameMapping = (a: PreprocessingProfile, b: PreprocessingProfile) =>
  JSON.stringify([a.inputRange, a.normalize, a.channelOrder]) === JSON.stringify([b.inputRange, b.normalize, b.channelOrder]);

/** "#1 class 3 (0.97), #2 class 1 (0.88) …": the top prediction of the first images, for a quick-pick detail. */
export function topLine(c: ProfileCheck | undefined, images = 4): string {
  if (!c) return '';
  if (c.top.length === 0) return c.problems.join('; ');
  const shown = c.top.slice(0, images).map((t, i) => `#${i + 1} class ${t[0].index} (${t[0].score.toFixed(2)})`).join(', ');
  return `${shown}${c.top.length > images ? ', …' : ''}${c.degenerate ? ` — looks wrong: ${c.problems.join('; ')}` : ''}`;
}

/** The check's result for a profile (the chosen one or an alternative with the same mapping). */
function resultFor(check: PreprocessingCheck, p: PreprocessingProfile): ProfileCheck | undefined {
  return [check.chosen, ...check.alternatives].find((c) => sameMapping(c.profile, p));
}

/** "lo,hi" or "m1,m2,m3/s1,s2,s3", with an optional " bgr": a custom profile, or a message saying what to type. */
export function parseCustom(text: string): PreprocessingProfile | string {
  const t = text.trim();
  const bgr = /\s+bgr$/i.test(t);
  const body = t.replace(/\s+(bgr|rgb)$/i, '');
  const nums = (s: string) => s.split(',').map((v) => Number(v.trim()));
  const ok = (v: number[]) => v.length > 0 && v.every(Number.isFinite);
  if (body.includes('/')) {
    const [m, s] = body.split('/');
    const mean = nums(m);
    const std = nums(s ?? '');
    if (!ok(mean) || !ok(std) || std.some((x) => x <= 0)) return 'type mean/std, e.g. 0.485,0.456,0.406/0.229,0.224,0.225 (std > 0)';
    return customProfile({ normalize: { mean, std }, channelOrder: bgr ? 'bgr' : 'rgb' }, 'user');
  }
  const r = nums(body);
  if (r.length !== 2 || !ok(r) || !(r[0] < r[1])) return 'type a range lo,hi (e.g. 0,255) or mean/std; add " bgr" for BGR models';
  return customProfile({ inputRange: [r[0], r[1]], channelOrder: bgr ? 'bgr' : 'rgb' }, 'user');
}

/**
 * The alternative the check recommends over `first`: set when the check ran with `first` as its chosen profile, found
 * it degenerate and found an alternative that is not (null otherwise).
 */
export function recommendedOver(check: PreprocessingCheck, first: PreprocessingProfile): ProfileCheck | null {
  if (!check.recommended || !sameMapping(check.chosen.profile, first)) return null;
  return check.recommended;
}

interface ProfileItem extends vscode.QuickPickItem {
  profile?: PreprocessingProfile;
  custom?: true;
}

/**
 * Runs the check in the worker: the chosen profile (undefined: the detected one) and the alternatives. Undefined when
 * it could not run (a model or image the analysis will report on its own terms): logged, never shown here.
 */
export async function runCheck(ctx: Ctx, settings: ExtensionSettings, modelPath: string, images: string[], chosen?: PreprocessingProfile, extra: PreprocessingProfile[] = []): Promise<PreprocessingOutcome | undefined> {
  try {
    const result = await ctx.pool(settings.workers).checkPreprocessing({
      modelPath,
      images,
      ...(chosen ? { profile: chosen } : {}),
      ...(extra.length ? { alternatives: extra } : {}),
      backend: settings.analysis.backend,
    });
    return result.status === 'complete' ? result.outcome : undefined;
  } catch (e) {
    ctx.log.warn(`preprocessing check of ${modelPath} did not run: ${(e as Error).message}`);
    return undefined;
  }
}

/** The quick pick: the first choice (detected / stored / setting), the presets, "Custom…"; undefined when dismissed. */
async function pickProfile(first: PreprocessingProfile, outcome: PreprocessingOutcome, setting: PreprocessingProfile | null, modelPath: string): Promise<PreprocessingProfile | undefined> {
  const check = outcome.check;
  const items: ProfileItem[] = [];
  const add = (p: PreprocessingProfile, description: string) => {
    if (items.some((i) => i.profile && sameMapping(i.profile, p))) return;
    items.push({ label: profileLabel(p), description, detail: topLine(resultFor(check, p)), profile: p });
  };
  // The check's recommendation first when the first choice gives degenerate outputs: a new user who accepts the top
  // item gets a model fed correctly (the first choice follows, marked "looks wrong" by its detail).
  const rec = recommendedOver(check, first);
  if (rec) add({ ...rec.profile, preset: presetNameOf(rec.profile), source: 'user (recommended by the check)' }, `recommended: at ${profileLabel(first)} the outputs look degenerate`);
  add(first, first.source === 'default' ? 'default: the model file says nothing' : first.source);
  if (setting) add(setting, 'workspace setting');
  // Per-channel presets (ImageNet, Caffe BGR) only for 3-channel models.
  for (const preset of PRESETS) if (check.channels === 3 || (!preset.normalize && preset.channelOrder === 'rgb')) add(presetProfile(preset.name, 'user'), preset.detail);
  items.push({ label: 'Custom…', description: 'a range lo,hi or a mean/std, optionally BGR', custom: true });
  const picked = await vscode.window.showQuickPick(items, {
    title: `infodiscard: preprocessing of ${vscode.workspace.asRelativePath?.(modelPath) ?? modelPath}`,
    placeHolder: 'How were this model\'s training images scaled? (top predictions on your images below each choice)',
    matchOnDetail: true,
    ignoreFocusOut: true,
  });
  if (!picked) return undefined;
  if (!picked.custom) return picked.profile;
  const text = await vscode.window.showInputBox({
    title: 'infodiscard: custom preprocessing',
    prompt: 'A range lo,hi (model input = lo + (hi − lo)·pixel) or mean/std per channel on [0,1] pixels; add " bgr" for BGR models',
    placeHolder: '0,255   or   0.485,0.456,0.406/0.229,0.224,0.225',
    validateInput: (v: string) => {
      const r = parseCustom(v);
      return typeof r === 'string' ? r : undefined;
    },
    ignoreFocusOut: true,
  });
  if (text === undefined) return undefined;
  const r = parseCustom(text);
  if (typeof r === 'string') throw new UserError(r, 'custom preprocessing');
  return r;
}

/**
 * Asks for the model's profile (quick pick with top predictions, then the degenerate-output warning), stores it and
 * returns it; undefined when the user dismissed the prompt. `current`: the profile to put first (Edit…).
 */
export async function askProfile(
  ctx: Ctx,
  settings: ExtensionSettings,
  model: vscode.Uri,
  images: string[],
  current?: PreprocessingProfile,
  options: { onDismiss?: 'suggestion' | 'cancel' } = {},
): Promise<PreprocessingProfile | undefined> {
  const modelPath = model.fsPath;
  const setting = inputRangeIsSet(model) ? settingProfile(settings) : null;
  // Dismissed on a first analysis: the suggestion for this run, not stored, so the next analysis asks again.
  const suggestion = (p: PreprocessingProfile) => (options.onDismiss === 'suggestion' ? p : undefined);
  let outcome = await runCheck(ctx, settings, modelPath, images, current, setting ? [setting] : []);
  if (!outcome) return suggestion(current ?? setting ?? presetProfile('[0,1]', 'default'));
  // First: what the file says, else the workspace setting, else [0,1] (what the check ran as its chosen one).
  let first = current ?? outcome.detected ?? setting ?? outcome.check.chosen.profile;
  if (!current && !outcome.detected && setting) {
    const again = await runCheck(ctx, settings, modelPath, images, setting);
    if (again) outcome = again;
    first = setting;
  }
  for (;;) {
    const picked = await pickProfile(first, outcome, setting, modelPath);
    if (!picked) return suggestion(first);
    const result = resultFor(outcome.check, picked) ?? (await runCheck(ctx, settings, modelPath, images, picked))?.check.chosen;
    const distinct = (c: ProfileCheck) => c.top.length < 2 || new Set(c.top.map((t) => t[0]?.index)).size >= 2;
    const better = result?.degenerate
      ? [outcome.check.chosen, ...outcome.check.alternatives].filter((c) => !c.degenerate && distinct(c) && !sameMapping(c.profile, picked)).sort((a, b) => b.meanTopScore - a.meanTopScore)[0]
      : undefined;
    let chosen = picked;
    if (result?.degenerate && better) {
      const use = `Use ${better.label} (recommended)`;
      const answer = await vscode.window.showWarningMessage(
        `infodiscard: with ${profileLabel(picked)} the model's outputs look degenerate (${result.problems.join('; ')}); with ${better.label} they do not (${topLine(better, 3)}).`,
        use,
        'Keep',
        'Edit…',
      );
      // Dismissed: keep the choice.
      if (answer === 'Edit…') {
        first = picked;
        continue;
      }
      if (answer === use) chosen = { ...better.profile, preset: presetNameOf(better.profile), source: 'user (recommended by the check)' };
    }
    const stored: PreprocessingProfile = chosen.source.startsWith('detected') || chosen.source.startsWith('user') ? chosen : { ...chosen, source: `user (${chosen.source})` };
    const sha = await ctx.store.modelHash(modelPath);
    const folder = reportsFolderFor(settings.reportsFolder, model, ctx.extension.globalStorageUri);
    const file = writeStoredProfile(folder, modelPath, sha ?? '', stored);
    ctx.log.info(`preprocessing of ${modelPath}: ${profileLabel(stored)} (${stored.source}), saved in ${file}`);
    return stored;
  }
}

/** The stored profile of a model, or null (no prompt). */
export async function storedProfile(ctx: Ctx, settings: ExtensionSettings, model: vscode.Uri): Promise<PreprocessingProfile | null> {
  const sha = await ctx.store.modelHash(model.fsPath);
  const folder = reportsFolderFor(settings.reportsFolder, model, ctx.extension.globalStorageUri);
  const found = findStoredProfile([folder], model.fsPath, sha ?? '');
  return found ? profileFromFound(found) : null;
}

/**
 * The profile to analyse a model with: the stored one, else asked for (first analysis). Dismissing the prompt
 * analyses with the suggestion (detected, setting or [0,1]) without storing it.
 */
export async function profileForRun(ctx: Ctx, settings: ExtensionSettings, model: vscode.Uri, images: string[]): Promise<PreprocessingProfile | undefined> {
  const stored = await storedProfile(ctx, settings, model);
  if (stored) return stored;
  if (!settings.preprocessingPrompt) {
    // `infodiscard.preprocessingPrompt: false`: no question. What the file says, else the workspace setting, else
    // [0,1]; the check still runs and its warning goes to the log (not stored, so turning the prompt on asks).
    const outcome = await runCheck(ctx, settings, model.fsPath, images);
    const profile = outcome?.detected ?? settingProfile(settings) ?? presetProfile('[0,1]', 'default');
    const flagged = outcome?.check.recommended;
    if (flagged) ctx.log.warn(`${model.fsPath}: ${outcome?.check.message ?? 'the outputs look degenerate at this preprocessing'}`);
    return profile;
  }
  return askProfile(ctx, settings, model, images, undefined, { onDismiss: 'suggestion' });
}
