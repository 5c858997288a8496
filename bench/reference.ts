/**
 * What the benchmarks share beyond util.ts: where the CLI and Debian's python are, the PyTorch reference script
 * (bench/sid_reference.py) run on a fixture, the machine line, and a temporary folder kept with --keep.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { arg } from './util';

export const ROOT = path.resolve(__dirname, '..');
export const CLI = path.join(ROOT, 'dist', 'cli.js');
/** Debian's python3-torch; a pyenv python3 may shadow it on PATH. */
export const PYTHON = '/usr/bin/python3';

/** A command line to print, with paths inside the repository made relative. */
export const show = (args: string[]): string =>
  args.map((a) => (path.isAbsolute(a) && !path.relative(ROOT, a).startsWith('..') ? path.relative(ROOT, a) : a)).join(' ');

export const fmt = (v: number | undefined, digits = 1): string => (v !== undefined && Number.isFinite(v) ? v.toFixed(digits) : '-');

/** "2 CPUs (...), load average 0.12", with a warning when other work is running. */
export function printMachine(): void {
  const [load1] = os.loadavg();
  console.log(`${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${load1.toFixed(2)}${load1 > 0.5 ? '  (other work is running: timings will be noisy)' : ''}`);
}

/** Why torch cannot run, or null if it can. */
export function torchMissing(): string | null {
  const probe = spawnSync(PYTHON, ['-c', 'import torch, PIL'], { encoding: 'utf8' });
  if (probe.status === 0) return null;
  return probe.error ? probe.error.message : (probe.stderr || '').trim().split('\n').pop() ?? `exit ${probe.status}`;
}

/** One layer as the PyTorch reference prints it (see bench/sid_reference.py). */
export interface TorchLayer { seconds: number; steps: number; sidMean: number; ratio: number; loopMsPerStep?: number }
export interface TorchRun { label: 'torch'; steps: number; wallSeconds: number; layers: Map<string, TorchLayer> }

/** Runs the PyTorch reference on a fixture folder (2 threads unless --torch-threads); throws if it fails. */
export function runTorchReference(fixtureDir: string, layers: string[], steps: number, samples: number, seed: number): TorchRun {
  const args = [path.join(ROOT, 'bench', 'sid_reference.py'), '--fixture', fixtureDir, '--layers', layers.join(','),
    '--steps', String(steps), '--samples', String(samples), '--seed', String(seed), '--threads', arg('--torch-threads', '2')];
  console.log(`\n$ ${PYTHON} ${show(args)}`);
  const t0 = performance.now();
  const r = spawnSync(PYTHON, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const wallSeconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`PyTorch reference exited with ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
  const timings = new Map<string, TorchLayer>();
  for (const line of r.stdout.split('\n').filter((l) => l.startsWith('{'))) {
    const j = JSON.parse(line);
    if (j.check) console.log(`  forward check vs tfjs logits: max |diff| = ${j.maxAbsDiff.toExponential(2)} (torch ${j.torch}, ${j.threads} threads)`);
    else timings.set(j.layer, { seconds: j.seconds, steps: j.steps, sidMean: j.sidMean, ratio: j.ratio, loopMsPerStep: j.loopMsPerStep });
  }
  console.log(`  torch, ${steps} steps: ${wallSeconds.toFixed(1)} s end to end`);
  return { label: 'torch', steps, wallSeconds, layers: timings };
}

/**
 * Runs a benchmark in a new temporary folder (kept with --keep, else removed) and exits with its code: 1 when it
 * threw (the error printed), else what it returned.
 */
export function runInTempDir(prefix: string, body: (tmp: string) => Promise<number>): void {
  const tmp = mkdtempSync(path.join(os.tmpdir(), prefix));
  body(tmp)
    .catch((e: unknown) => {
      console.error(e);
      return 1;
    })
    .then((code) => {
      if (process.argv.includes('--keep')) console.log(`\nkept ${tmp}`);
      else rmSync(tmp, { recursive: true, force: true });
      process.exit(code);
    });
}
