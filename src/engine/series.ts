/**
 * Checkpoint series on a cluster (`infodiscard compare-checkpoints <folder> --shard I/N`): each checkpoint is one
 * sharded analysis with its own parts folder, listed in <out>/series-parts.json; the merge writes each checkpoint's
 * report and a series file (format 'infodiscard-series') that Open Report… shows as the epoch chart of Compare
 * Checkpoints. Reading and writing only: the analyses are src/cli/shard.ts's.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from './errors';
import { writeReport } from './reportFile';
import type { Report } from './report';
import { readParts, writeJsonAtomic } from './shardFiles';
import { mergeShardParts, PART_NAME } from './shards';

export const SERIES_PARTS = 'series-parts.json';

export interface SeriesCheckpoint {
  label: string;
  epoch: number;
  /** The checkpoint's model file. */
  model: string;
  /** Its parts folder, relative to the series' parts folder (and the stem of its merged report). */
  dir: string;
}

export interface SeriesParts {
  format: 'infodiscard-series-parts';
  version: 1;
  /** The folder of checkpoints, and how the x axis was read from their names. */
  folder: string;
  axis: 'epoch' | 'order';
  checkpoints: SeriesCheckpoint[];
}

export interface SeriesFile {
  format: 'infodiscard-series';
  version: 1;
  folder: string;
  axis: 'epoch' | 'order';
  status: 'complete' | 'partial';
  /** Each checkpoint with its merged report (relative to the series file; null when none of its shards is there). */
  checkpoints: { label: string; epoch: number; report: string | null; status: Report['status'] | 'missing'; shards: number; missingShards: number[] }[];
}

/** A file-system-safe, unique folder name per checkpoint label. */
export function checkpointDirs(labels: readonly string[]): string[] {
  const used = new Set<string>();
  return labels.map((label, i) => {
    let name = label.replace(/[^\w.-]+/g, '_').replace(/^\.+/, '_') || `checkpoint-${i}`;
    if (used.has(name)) name = `${name}-${i}`;
    used.add(name);
    return name;
  });
}

export function isSeriesPartsFolder(dir: string): boolean {
  return existsSync(path.join(dir, SERIES_PARTS));
}

export function readSeriesParts(dir: string): SeriesParts {
  const file = path.join(dir, SERIES_PARTS);
  let s: SeriesParts;
  try {
    s = JSON.parse(readFileSync(file, 'utf8')) as SeriesParts;
  } catch (e) {
    throw new UserError(`is not readable (${(e as Error).message.split('\n')[0]}); rerun a shard of compare-checkpoints to rewrite it`, file);
  }
  if (s?.format !== 'infodiscard-series-parts' || !Array.isArray(s.checkpoints)) throw new UserError('is not an infodiscard checkpoint-series listing', file);
  return s;
}

/** Parses a series file (format 'infodiscard-series'); undefined when the JSON is something else. */
export function asSeriesFile(data: unknown): SeriesFile | undefined {
  const s = data as SeriesFile;
  return s && typeof s === 'object' && s.format === 'infodiscard-series' && Array.isArray(s.checkpoints) ? s : undefined;
}

/**
 * Merges every checkpoint's parts (src/engine/shards.ts) into <dirname(out)>/<dir>.json and writes the series file
 * `out`. 'partial' when a checkpoint has shards missing (its report partial, or absent when it has no part at all).
 */
export function mergeSeries(partsDir: string, out: string): SeriesFile {
  const listing = readSeriesParts(partsDir);
  const outDir = path.dirname(path.resolve(out));
  const checkpoints: SeriesFile['checkpoints'] = listing.checkpoints.map((cp) => {
    const dir = path.join(partsDir, cp.dir);
    const hasParts = existsSync(dir) && readdirSync(dir).some((n) => PART_NAME.test(n));
    if (!hasParts) return { label: cp.label, epoch: cp.epoch, report: null, status: 'missing', shards: 0, missingShards: [] };
    const merged = mergeShardParts(readParts([dir]));
    const file = path.join(outDir, `${cp.dir}.json`);
    writeReport(file, merged.report);
    return { label: cp.label, epoch: cp.epoch, report: path.relative(outDir, file), status: merged.report.status, shards: merged.count, missingShards: merged.missing };
  });
  const series: SeriesFile = {
    format: 'infodiscard-series',
    version: 1,
    folder: listing.folder,
    axis: listing.axis,
    status: checkpoints.every((c) => c.status === 'complete') ? 'complete' : 'partial',
    checkpoints,
  };
  writeJsonAtomic(out, series);
  return series;
}
