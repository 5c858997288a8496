/**
 * The example model families shipped in media/families (trained by scripts/families/train_families.py): the
 * manifest's types and its validation. Pure (no file system): read by `npm run repro` (scripts/repro) and by the
 * extension's "Compare Layers Across Models…", which offers each family as a ready-made comparison.
 */
import path from 'node:path';
import type { PreprocessingProfile } from './report';
import { customProfile, presetProfile } from './preprocessing/presets';

export const FINDINGS = ['depth', 'damage', 'compression', 'distillation', 'epochs', 'task'] as const;
export type Finding = (typeof FINDINGS)[number];

export interface ModelSpec {
  name: string;
  /** Relative to the manifest's folder (or absolute). */
  file: string;
  x: number;
  testAccuracy?: number | null;
  /** Reconstruction models: test mean squared error instead of an accuracy. */
  testMSE?: number | null;
  params?: number | null;
  notes?: string;
  /** e.g. teacher, baseline, original, scratch, distilled, damaged. */
  role?: string;
  /** The training seed of this file (train_families.py --seed). */
  seed?: number;
  /** Variant group: one variant, whatever the seed (train_families.py: the file path without .onnx). */
  group?: string;
  /** The same variant trained with other seeds (files relative to the manifest's folder). */
  runs?: SeedRun[];
}

export interface SeedRun {
  seed: number;
  file: string;
  testAccuracy?: number | null;
  testMSE?: number | null;
  params?: number | null;
}

export interface FamilySpec {
  id: string;
  finding: Finding;
  title: string;
  claim: string;
  xLabel: string;
  layers: string[];
  models: ModelSpec[];
  /** Optional: the layer the headline and the "vs x" chart use (default: the family's last layer). */
  focusLayer?: string;
  /** Optional: the layers that get RU (default in main.ts: the focus layer and one halfway before it). */
  ruLayers?: string[];
  /** Optional per family: images folder, boxes file, RU training images (default: the manifest's). */
  images?: string;
  boxes?: string;
  trainImages?: string;
  /** Optional: input range "lo,hi" passed to the CLI. */
  inputRange?: string;
  /** Optional: a preprocessing preset name ([0,1], [0,255], [-1,1], imagenet, caffe-bgr); wins over inputRange. */
  preprocessing?: string;
  /** Optional text shown under the family's heading (e.g. where the models come from, caveats). */
  note?: string;
}

export interface Manifest {
  /** Optional: the preprocessing preset of every family that names none (default [0,1], as the models were trained). */
  preprocessing?: string;
  dataset?: string;
  seed?: number;
  script?: string;
  images?: string;
  boxes?: string;
  trainImages?: string;
  families: FamilySpec[];
}

export const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
export const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** Validate a parsed manifest.json; throws one message listing every problem. */
export function parseManifest(value: unknown): Manifest {
  const problems: string[] = [];
  if (!isObj(value) || !Array.isArray(value.families)) throw new Error('manifest: expected an object with a "families" array');
  const ids = new Set<string>();
  value.families.forEach((f: unknown, i: number) => {
    const where = `families[${i}]`;
    if (!isObj(f)) return problems.push(`${where} is not an object`);
    if (typeof f.id !== 'string' || !/^[A-Za-z0-9._-]+$/.test(f.id)) problems.push(`${where}.id must be a file-name-safe string`);
    else if (ids.has(f.id)) problems.push(`${where}.id "${f.id}" is used twice`);
    else ids.add(f.id);
    if (!FINDINGS.includes(f.finding as Finding)) problems.push(`${where}.finding must be one of ${FINDINGS.join(', ')}`);
    if (!Array.isArray(f.layers) || f.layers.length === 0 || !f.layers.every((l) => typeof l === 'string')) problems.push(`${where}.layers must be a non-empty array of layer names`);
    if (!Array.isArray(f.models) || f.models.length === 0) problems.push(`${where}.models must be a non-empty array`);
    else f.models.forEach((m: unknown, j: number) => {
      if (!isObj(m) || typeof m.name !== 'string' || typeof m.file !== 'string') problems.push(`${where}.models[${j}] needs "name" and "file"`);
      else if (!isNum(m.x)) problems.push(`${where}.models[${j}] ("${m.name}") needs a numeric "x"`);
      else if (m.runs !== undefined && (!Array.isArray(m.runs) || !m.runs.every((r) => isObj(r) && isNum(r.seed) && typeof r.file === 'string')))
        problems.push(`${where}.models[${j}] ("${m.name}"): "runs" must be an array of {seed, file}`);
    });
    return undefined;
  });
  if (problems.length) throw new Error(`manifest: ${problems.join('; ')}`);
  const families = (value.families as Record<string, unknown>[]).map((f) => ({
    title: String(f.id),
    claim: '',
    xLabel: 'x',
    ...f,
  })) as unknown as FamilySpec[];
  return { ...(value as unknown as Manifest), families };
}

/** Where a family's inputs are, as absolute paths (the files may not exist; callers check). */
export interface FamilyInputs {
  /** The analysis images: a folder (or one file). */
  images: string;
  /** Concentration's object boxes: the family's, the manifest's, or boxes.json in the images folder. */
  boxes: string;
  /** RU decoders' extra training images (undefined: the manifest names none). */
  trainImages?: string;
  /** The models in manifest order, with their files resolved. */
  models: { spec: ModelSpec; file: string }[];
}

/** Resolves a family's paths against the manifest's folder (per-family values override the manifest's). */
export function familyInputs(family: FamilySpec, manifest: Pick<Manifest, 'images' | 'boxes' | 'trainImages'> | null, manifestDir: string): FamilyInputs {
  const images = path.resolve(manifestDir, family.images ?? manifest?.images ?? 'images');
  const boxes = path.resolve(manifestDir, family.boxes ?? manifest?.boxes ?? path.join(images, 'boxes.json'));
  const train = family.trainImages ?? manifest?.trainImages;
  return {
    images,
    boxes,
    ...(train ? { trainImages: path.resolve(manifestDir, train) } : {}),
    models: family.models.map((spec) => ({ spec, file: path.resolve(manifestDir, spec.file) })),
  };
}

/** The seeds a manifest's models were trained with (1 when it names none): the model's own and its runs'. */
export function manifestSeeds(manifest: Pick<Manifest, 'families' | 'seed'>): number[] {
  const seeds = new Set<number>();
  for (const f of manifest.families) for (const m of f.models) {
    seeds.add(m.seed ?? manifest.seed ?? 1);
    for (const r of m.runs ?? []) seeds.add(r.seed);
  }
  return [...seeds].sort((a, b) => a - b);
}

/**
 * A model's file for one seed (relative to the manifest's folder, as in the manifest), or undefined when that
 * seed was not trained. The model's own seed is its `seed` (else the manifest's, else 1).
 */
export function seedFile(spec: ModelSpec, seed: number, manifestSeed = 1): string | undefined {
  if ((spec.seed ?? manifestSeed) === seed) return spec.file;
  return spec.runs?.find((r) => r.seed === seed)?.file;
}

/**
 * The preprocessing a family's models are analysed with: the family's preset, else its input range, else the
 * manifest's preset, else [0,1] (how the shipped models were trained). Never the user's settings: source 'manifest'.
 */
export function familyProfile(family: Pick<FamilySpec, 'preprocessing' | 'inputRange'>, manifest: Pick<Manifest, 'preprocessing'> | null): PreprocessingProfile {
  if (family.preprocessing) return presetProfile(family.preprocessing, 'manifest');
  if (family.inputRange) {
    const r = family.inputRange.split(',').map(Number);
    if (r.length !== 2 || !r.every(Number.isFinite) || !(r[0] < r[1])) throw new Error(`manifest: inputRange "${family.inputRange}" is not lo,hi`);
    return customProfile({ inputRange: [r[0], r[1]] }, 'manifest');
  }
  return presetProfile(manifest?.preprocessing ?? '[0,1]', 'manifest');
}
