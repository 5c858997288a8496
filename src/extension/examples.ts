/**
 * The example model families shipped in media/families (small Fashion-MNIST networks trained by
 * scripts/families/train_families.py; the paper's comparisons: depth, an inserted block, pruning, distillation,
 * epochs, task). "Compare Layers Across Models…" offers each family as a ready-made comparison, and "Compare an
 * Example Model Family…" picks one directly, so the first comparison a user opens shows what the tool is for.
 * A family is analysed like any picked models, with the user's settings, but at the family's layers, with the
 * family's preprocessing (its manifest's, never the user's input range), on the family's images and object boxes
 * (and the shipped training images for RU decoders).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as vscode from 'vscode';
import { familyInputs, familyProfile, manifestSeeds, parseManifest, seedFile, type FamilyInputs, type FamilySpec, type ModelSpec } from '../engine/families';
import { profileSettings } from '../engine/preprocessing/presets';
import type { PreprocessingProfile } from '../engine/report';
import type { ExtensionSettings } from './config';
import type { Ctx } from './ctx';
import { fileInfo, imagesAt } from './inputs';
import type { RunChoice } from './analyzeCommands';

export interface ExampleFamily {
  spec: FamilySpec;
  inputs: FamilyInputs;
  /** The manifest's preprocessing for this family (source 'manifest'). */
  profile: PreprocessingProfile;
  /** The training seeds every model of the family has a file for (train_families.py --seed N; [1] without). */
  seeds: number[];
  /** The manifest's own seed (its models' `file`). */
  manifestSeed: number;
  /** The manifest's folder (seed files are relative to it). */
  dir: string;
}

/** One model file of a family for one seed, with its variant group (the model, whatever the seed). */
export interface ExampleRun {
  spec: ModelSpec;
  file: string;
  seed: number;
  group: string;
}

/** Every model of the family for each of `seeds` (seed-major order: all models of the first seed, then the next). */
export function exampleRuns(f: ExampleFamily, seeds: number[] = [f.manifestSeed]): ExampleRun[] {
  return seeds.flatMap((seed) => f.spec.models.flatMap((spec) => {
    const rel = seedFile(spec, seed, f.manifestSeed);
    return rel ? [{ spec, file: path.resolve(f.dir, rel), seed, group: spec.group ?? spec.file }] : [];
  }));
}

export function familiesFolder(ctx: Ctx): string {
  return vscode.Uri.joinPath(ctx.extensionUri, 'media', 'families').fsPath;
}

/** The shipped families, in manifest order; none when the folder is missing (a trimmed install) or its manifest is bad (logged). */
export async function exampleFamilies(ctx: Ctx): Promise<ExampleFamily[]> {
  const dir = familiesFolder(ctx);
  const file = path.join(dir, 'manifest.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return [];
  }
  try {
    const manifest = parseManifest(JSON.parse(text));
    const manifestSeed = manifest.seed ?? 1;
    return manifest.families
      .map((spec) => {
        const seeds = manifestSeeds({ families: [spec], seed: manifestSeed })
          .filter((s) => spec.models.every((m) => { const f = seedFile(m, s, manifestSeed); return !!f && existsSync(path.resolve(dir, f)); }));
        return { spec, inputs: familyInputs(spec, manifest, dir), profile: familyProfile(spec, manifest), seeds, manifestSeed, dir };
      })
      .filter((f) => f.inputs.models.every((m) => existsSync(m.file)));
  } catch (e) {
    ctx.log.warn(`${file}: ${(e as Error).message}; the example families are not offered`);
    return [];
  }
}

/**
 * How a family reads in a quick pick: its title, its models and the paper's claim it tests. `acrossSeeds`: the
 * entry that analyses every trained seed of each model and draws each model as one series (mean ± SD across runs).
 */
export function exampleItem(f: ExampleFamily, acrossSeeds = false): { label: string; description: string; detail: string } {
  const names = f.spec.models.map((m) => m.name);
  const shown = names.length > 4 ? `${names.slice(0, 4).join(', ')}, …` : names.join(', ');
  if (acrossSeeds) {
    return {
      label: `$(beaker) ${f.spec.title}, across ${f.seeds.length} training runs`,
      description: `${names.length} models × seeds ${f.seeds.join(', ')}`,
      detail: `Each model drawn as one series, mean ± SD across its runs; says whether differences exceed the run-to-run spread${f.spec.claim ? `. Paper: ${f.spec.claim}` : ''}`,
    };
  }
  return {
    label: `$(beaker) ${f.spec.title}`,
    description: `${names.length} models: ${shown}`,
    detail: f.spec.claim ? `Paper: ${f.spec.claim}` : `${f.spec.layers.length} layers`,
  };
}

/**
 * What a family is analysed with: `settings` (the user's, for metrics, backend, workers and the search) at the
 * family's layers and input range, on its images; its boxes for concentration and the shipped training images
 * for RU, when those metrics are on.
 */
export async function exampleChoice(settings: ExtensionSettings, f: ExampleFamily): Promise<RunChoice> {
  // The family's own preprocessing (its manifest's), never the user's range or normalisation.
  const analysis = { ...settings.analysis, ...profileSettings(f.profile) };
  const metrics = analysis.metrics ?? ['sid'];
  const images = await imagesAt([f.inputs.images], `${f.spec.title} images`);
  const choice: RunChoice = { settings: { ...settings, analysis }, images, notes: [], layers: f.spec.layers };
  if (metrics.includes('ru') && f.inputs.trainImages && existsSync(f.inputs.trainImages)) {
    choice.trainImages = (await imagesAt([f.inputs.trainImages], 'training images')).files;
  }
  if (metrics.includes('concentration')) {
    choice.boxesFile = await fileInfo(f.inputs.boxes);
    if (!choice.boxesFile) choice.notes.push(`concentration needs object regions: ${f.inputs.boxes} is missing`);
  }
  return choice;
}
