/** Command-line parsing for `infodiscard analyze` and `infodiscard layers`, with one-line errors. */
import { parseArgs } from 'node:util';
import { UserError } from '../engine/errors';
import { DEFAULT_SETTINGS, type SettingsInput } from '../engine/settings';
import type { BackendChoice } from '../engine/backend';

export const USAGE = `infodiscard — how much of the input each layer of a trained network discards (SID, Ma et al. 2019)

Usage:
  infodiscard analyze <model.json> --images <files|folder> [options]
  infodiscard layers <model.json>          list the layers that can be analysed, with output shapes

Options for analyze:
  --images <paths>       PNG/JPEG files or folders, comma-separated or repeated (required)
  --layers a,b           layers to analyse, in model order (default: all)
  --out <report.json>    report file, written after every layer (default: infodiscard-report.json)
  --html <report.html>   also write a self-contained HTML page with the charts and heatmaps
  --seed N               random seed (default ${DEFAULT_SETTINGS.seed})
  --samples K            noise samples per optimisation step (default ${DEFAULT_SETTINGS.samples})
  --max-steps N          optimisation steps at most (default ${DEFAULT_SETTINGS.maxSteps})
  --alpha A              feature-change level E||f'-f||^2 / delta_f^2 (default ${DEFAULT_SETTINGS.alpha})
  --tau T                pixel-noise variance for delta_f^2 (default ${DEFAULT_SETTINGS.tau})
  --sigma-max S          upper bound of sigma in pixel units (default ${DEFAULT_SETTINGS.sigmaMax})
  --sigma-grid N         learn an N x N grid of sigmas, upsampled to the image (default: one per pixel)
  --learning-rate R      Adam step on log-sigma (default ${DEFAULT_SETTINGS.learningRate})
  --input-range lo,hi    model input = lo + (hi-lo) * pixel, pixels in [0,1] (default 0,1)
  --normalize m/s        model input = (pixel - m) / s, per channel: 0.485,0.456,0.406/0.229,0.224,0.225
  --input-size HxW       image size for models that accept any size
  --backend B            auto | tensorflow | wasm | cpu (default auto: tfjs-node if installed, else wasm)
  --quiet                no progress display
  -h, --help             this help
  -v, --version          version
`;

export interface AnalyzeArgs {
  command: 'analyze';
  model: string;
  images: string[];
  layers?: string[];
  out: string;
  html?: string;
  inputSize?: [number, number];
  quiet: boolean;
  settings: SettingsInput;
}

export interface LayersArgs {
  command: 'layers';
  model: string;
  backend: BackendChoice;
}

export type CliArgs = AnalyzeArgs | LayersArgs | { command: 'help' } | { command: 'version' };

function num(value: string | undefined, option: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new UserError(`expects a number, got "${value}"`, option);
  return n;
}

function numberList(value: string, option: string): number[] {
  return value.split(',').map((v) => num(v, option, NaN));
}

function list(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v.length > 0);
}

export function parseCli(argv: string[]): CliArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        images: { type: 'string', multiple: true },
        layers: { type: 'string', multiple: true },
        out: { type: 'string' },
        html: { type: 'string' },
        seed: { type: 'string' },
        samples: { type: 'string' },
        'max-steps': { type: 'string' },
        alpha: { type: 'string' },
        tau: { type: 'string' },
        'sigma-max': { type: 'string' },
        'sigma-grid': { type: 'string' },
        'learning-rate': { type: 'string' },
        'input-range': { type: 'string' },
        normalize: { type: 'string' },
        'input-size': { type: 'string' },
        backend: { type: 'string' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    const ambiguous = /Option '(--[\w-]+)' argument is ambiguous/.exec(msg);
    if (ambiguous) throw new UserError(`write a value that starts with "-" as ${ambiguous[1]}=VALUE`, ambiguous[1]);
    throw new UserError(`${msg.replace(/\.$/, '')}; see "infodiscard --help"`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) return { command: 'help' };
  if (v.version) return { command: 'version' };
  const [command, model, ...extra] = positionals;
  if (!command) return { command: 'help' };
  if (command !== 'analyze' && command !== 'layers') throw new UserError(`unknown command "${command}"; use "analyze" or "layers" (see --help)`);
  if (!model) throw new UserError(`${command} needs a model file: infodiscard ${command} <model.json>`);
  if (extra.length > 0) throw new UserError(`unexpected argument "${extra[0]}"; give images with --images`);
  const backend = (v.backend ?? DEFAULT_SETTINGS.backend) as BackendChoice;
  if (command === 'layers') return { command, model, backend };

  const images = list(v.images);
  if (images.length === 0) throw new UserError('is required: give PNG/JPEG files or a folder', '--images');

  let inputRange: [number, number] | null = null;
  if (v['input-range'] !== undefined) {
    const r = numberList(v['input-range'], '--input-range');
    if (r.length !== 2) throw new UserError(`expects lo,hi (two numbers), got "${v['input-range']}"`, '--input-range');
    inputRange = [r[0], r[1]];
  }
  let normalize: SettingsInput['normalize'] = null;
  if (v.normalize !== undefined) {
    const parts = v.normalize.split('/');
    if (parts.length !== 2) throw new UserError(`expects mean/std, e.g. 0.485,0.456,0.406/0.229,0.224,0.225, got "${v.normalize}"`, '--normalize');
    normalize = { mean: numberList(parts[0], '--normalize'), std: numberList(parts[1], '--normalize') };
  }
  let inputSize: [number, number] | undefined;
  if (v['input-size'] !== undefined) {
    const m = /^(\d+)x(\d+)$/.exec(v['input-size']);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UserError(`expects HxW, e.g. 224x224, got "${v['input-size']}"`, '--input-size');
    inputSize = [Number(m[1]), Number(m[2])];
  }
  const d = DEFAULT_SETTINGS;
  return {
    command,
    model,
    images,
    layers: v.layers ? list(v.layers) : undefined,
    out: v.out ?? 'infodiscard-report.json',
    html: v.html,
    inputSize,
    quiet: !!v.quiet,
    settings: {
      alpha: num(v.alpha, '--alpha', d.alpha),
      tau: num(v.tau, '--tau', d.tau),
      samples: num(v.samples, '--samples', d.samples),
      maxSteps: num(v['max-steps'], '--max-steps', d.maxSteps),
      seed: num(v.seed, '--seed', d.seed),
      backend,
      inputRange,
      normalize,
      sigmaGrid: v['sigma-grid'] === undefined ? null : num(v['sigma-grid'], '--sigma-grid', NaN),
      sigmaMax: num(v['sigma-max'], '--sigma-max', d.sigmaMax),
      learningRate: num(v['learning-rate'], '--learning-rate', d.learningRate),
    },
  };
}
