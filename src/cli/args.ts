/** Command-line parsing for `infodiscard analyze` and `infodiscard layers`, with one-line errors. */
import { parseArgs } from 'node:util';
import { UserError } from '../engine/errors';
import { DEFAULT_DECODER, DEFAULT_SETTINGS, LIGHT_DECODER, type SettingsInput } from '../engine/settings';
import type { DecoderSettings, MetricName, ObjectRegion } from '../engine/report';
import { parseBoxFlag } from '../engine/regions';
import { parseResize, parseTransparency } from '../engine/imageOptions';
import type { ImageOptions } from '../engine/geometry';
import type { AnalyzeParams } from '../protocol';
import type { BackendChoice } from '../engine/backend';
import { parseShard, type ShardSpec } from '../engine/shards';
import { RECOMMENDED_LAYERS } from '../engine/resolveLayers';
import { parseInputShape } from '../engine/pytorch/detect';
import { SPLIT_SAMPLES_CHOICES, type SplitSamples } from '../worker/parallel';
import { NATIVE_CHOICES, type NativeChoice } from '../engine/native/choice';

export const USAGE = `infodiscard — how much of the input each layer of a trained network discards (SID, Ma et al. 2019)

Usage:
  infodiscard analyze <model.json> --images <files|folder> [options]
  infodiscard layers <model.json>          list the layers that can be analysed, with output shapes; * marks the
                                           recommended ones (block outputs), the default of analyze
  infodiscard analyze <model.json> --images <…> --shard I/N --out <parts folder> [options]
                                           only shard I (0 … N-1) of the analysis's jobs: one part file, for a
                                           Slurm job array or a Kubernetes Indexed Job (docs/cluster.md)
  infodiscard merge <parts… | folder> --out <report.json> [--html <report.html>]
                                           the parts of a sharded analysis as one report (see "merge --help")
  infodiscard compare-checkpoints <folder> --images <…> [--shard I/N] [--out <parts folder>] [options]
                                           every checkpoint of a training run (SID against epoch), sharded or
                                           not (see "compare-checkpoints --help")

  Models: TensorFlow.js model.json, Keras .h5/.hdf5/.keras, a Keras to_json .json (weights: the same-stem .h5 or
  .weights.h5 beside it, or --weights), ONNX .onnx, TensorFlow SavedModel folders, and PyTorch files: a TorchScript
  archive (torch.jit.save) or a torch.export .pt2 is exported to ONNX first with your Python (the command is
  printed; the ONNX is kept beside the report and reused while the file is unchanged); a state_dict gets a snippet
  to complete.
  infodiscard coherency <model.json> --images <paths> --first <conv layer> [--factor 4] [analyze options]
                                           the paper's coherency check: w_L/4, b_L/4, 4·w_L+1 leaves the output
                                           unchanged; which measures move? (writes infodiscard-coherency.json)

PyTorch files (analyze and layers):
  --python <exe>         the Python with PyTorch that exports to ONNX (default: $INFODISCARD_PYTHON, else python3)
  --input-shape NxCxHxW  the input to export with (default: the one recorded in the file, else 1x3x224x224)
Keras to_json files (analyze and layers):
  --weights <file.h5>    the weights saved with model.save_weights (default: the same stem beside the .json)

Options for analyze:
  --images <paths>       PNG, JPEG, BMP, GIF, TIFF or WebP files or folders, comma-separated or repeated
                         (required); a folder's files that cannot be read are named in one warning
  --layers a,b           layers to analyse, in model order; "all" for every layer (default: the recommended set,
                         the block outputs marked * by "infodiscard layers")
  --out <report.json>    report file, written after every layer (default: infodiscard-report.json)
  --html <report.html>   also write a self-contained HTML page with the charts and heatmaps
  --seed N               random seed (default ${DEFAULT_SETTINGS.seed})
  --samples K            noise samples per optimisation step (default ${DEFAULT_SETTINGS.samples})
  --max-steps N          optimisation steps at most (default ${DEFAULT_SETTINGS.maxSteps})
  --min-steps N          steps before the search may stop early (default 30, 20 with --warm-start); equal to
                         --max-steps for a fixed-length run, the paper's plain algorithm
  --sample-batch N       noise samples per forward/backward pass, to bound memory on large inputs (default: all
                         K when they fit in 768 MB of tensors, measured per layer); the answer does not change
  --alpha A              feature-change level E||f'-f||^2 / delta_f^2 (default ${DEFAULT_SETTINGS.alpha})
  --tau T                pixel-noise variance for delta_f^2 (default ${DEFAULT_SETTINGS.tau})
  --sigma-max S          upper bound of sigma in pixel units (default ${DEFAULT_SETTINGS.sigmaMax})
  --sigma-grid N         learn an N x N grid of sigmas, upsampled to the image (default: one per pixel)
  --learning-rate R      Adam step on log-sigma (default ${DEFAULT_SETTINGS.learningRate})

Preprocessing (how [0,1] pixels become model input; default: the model's stored profile, else what the model file
says (a Rescaling layer, ONNX metadata, a torchvision-style graph), else [0,1]):
  --preset NAME          0,1 | 0,255 | -1,1 (write --preset=-1,1) | imagenet (torchvision mean/std) | caffe-bgr
                         (BGR, 0-255 minus the Caffe mean); [0,1] [0,255] [-1,1] work too when quoted
  --input-range lo,hi    model input = lo + (hi-lo) * pixel, pixels in [0,1]
  --normalize m/s        model input = (pixel - m) / s, per channel: 0.485,0.456,0.406/0.229,0.224,0.225
  --bgr                  the model reads channels as BGR (mean/std then in B,G,R order)
  --force                analyse even when the outputs look degenerate at this preprocessing (the check runs
                         the model at [0,1], 0-255, [-1,1] and ImageNet first; without --force a profile that
                         gives the same or uniform outputs for every image, when another does not, exits 2)
                         Profiles are stored per model as preprocessing/<model>-<sha12>.preprocessing.json in
                         the reports folder (the extension writes them; the CLI reads ./.infodiscard and the --out folder)
  --input-size HxW       image size for models that accept any size
  --resize M             how images fit the model input: stretch (default; aspect ratio not kept),
                         center-crop (torchvision's Resize + CenterCrop: use it for torchvision models) or
                         letterbox[:r,g,b] (fit inside, pad with r,g,b 0-255, default black)
  --transparency T       composite[:r,g,b] (over r,g,b 0-255, default black) or drop (ignore alpha)
  --backend B            auto | tensorflow | webgpu | wasm | cpu (default auto: tfjs-node if installed, else
                         webgpu on a hardware GPU, else wasm; with --workers, one worker uses the GPU, the rest wasm)
  --preview              SID as a first-order map (Jacobian column norms, one level fit): seconds per layer at
                         32×32, 20–100 s at 224×224 on CPU; an approximation of the optimised map, labelled as
                         such in the report
  --warm-start           start the SID search from that map instead of a flat sigma
  --shard I/N            run shard I of N (0-based) and write <out>/shard-I-of-N.json; --out is then a folder
                         (default infodiscard-parts); a rerun skips its finished jobs, a finished shard exits
  --output-softmax       analyse an output layer's softmax probabilities as they are (default: its pre-softmax
                         scores, where the loader finds them: probabilities are heavy-tailed under noise)
  --workers N            worker processes analysing layers (and a layer's images) in parallel: a number, or
                         auto = one per core (default auto; 1 = in this process); the report is the same
  --split-samples M      auto | always | never: let the workers a layer's images leave free split its noise
                         samples (default auto: inputs of 128×128 and more on wasm/cpu; same answer to rounding)
  --native M             auto | off: run an ONNX model's SID passes on onnxruntime when it is installed, on the
                         wasm/cpu backends (default auto; off = tfjs only, as INFODISCARD_NATIVE=off)

Metrics (SID always runs; add the others):
  --metrics m,...        sid, ru, concentration, baselines (default sid)
  --train-images <paths> RU: more images (files or folders) to train each layer's decoder on, besides --images
  --decoder D            RU: default (6 residual blocks, the paper's) or light (3 blocks, narrower: faster)
  --decoder-blocks N     RU: residual blocks of the decoder
  --decoder-width N      RU: channels of the decoder's blocks
  --decoder-epochs N     RU: training epochs at most (stops earlier when the held-out loss plateaus)
  --decoder-training M   RU: noisy (default: clean images and noisy copies at the RU search's noise scale) or clean
  --decoder-cache <dir>  RU: where trained decoders are kept and reused (default: decoders/ beside --out)
  --boxes <file.json>    concentration: object regions, {"image.png": {"bbox": [x, y, w, h]}} or {"mask": "m.png"}
  --box x,y,w,h          concentration: one box (original-image pixels) for images the --boxes file leaves out
  --target-class N       baselines: the output unit to explain (default: each image's top prediction)
  --no-resume            recompute every layer (default: reuse the layers the report at --out already has for this
                         model, these settings and images, and compute only the rest)
  --quiet                no progress display
  -h, --help             this help
  -v, --version          version
`;

/** How a model file given on the command line is opened (PyTorch export, Keras weights). */
export interface ModelSource {
  model: string;
  /** PyTorch: the Python that exports to ONNX. */
  python: string;
  /** PyTorch: the export's input shape, when given. */
  exportShape?: number[];
  /** Keras to_json: the weights file, when given. */
  weights?: string;
}

export interface AnalyzeArgs extends ModelSource {
  command: 'analyze';
  model: string;
  images: string[];
  layers?: string[];
  out: string;
  html?: string;
  inputSize?: [number, number];
  /** --resize / --transparency, when given. */
  imageOptions?: ImageOptions;
  quiet: boolean;
  /** Reuse the layers of the report already at --out (false: --no-resume). */
  resume: boolean;
  settings: SettingsInput;
  /** Worker processes for the layers (1: analyse in this process). */
  workers: number | 'auto';
  /** --split-samples (src/worker/parallel.ts teamSize); absent: the environment's, else auto. */
  splitSamples?: SplitSamples;
  /** --native off: ONNX layers stay on tfjs (src/engine/native/); absent: the environment's, else auto. */
  native?: NativeChoice;
  /** --shard I/N: only this shard's jobs, written as a part file into the folder `out`. */
  shard?: ShardSpec;
  trainImages?: string[];
  decoderCacheDir?: string;
  boxesFile?: string;
  defaultRegion?: ObjectRegion;
  targetClass?: number;
  /** Preprocessing flags: --preset, --bgr (--input-range/--normalize are in settings), --force. */
  preprocessing: { preset?: string; bgr: boolean; force: boolean; explicit: boolean };
}

export interface LayersArgs extends ModelSource {
  command: 'layers';
  model: string;
  backend: BackendChoice;
}

/** What `analyze` asks of the engine (or of worker processes), from the parsed options. */
export function analyzeParams(args: AnalyzeArgs): AnalyzeParams {
  return {
    modelPath: args.model,
    ...(args.weights !== undefined ? { weightsPath: args.weights } : {}),
    images: args.images,
    // The CLI's default is the recommended set (the engine's, for other callers, is every layer).
    layers: args.layers ?? [RECOMMENDED_LAYERS],
    settings: args.settings,
    inputSize: args.inputSize,
    ...(args.imageOptions ? { imageOptions: args.imageOptions } : {}),
    trainImages: args.trainImages,
    decoderCacheDir: args.decoderCacheDir,
    boxesFile: args.boxesFile,
    defaultRegion: args.defaultRegion,
    targetClass: args.targetClass,
    reportPath: args.out,
    ...(args.resume ? {} : { resume: false }),
    ...(args.native ? { native: args.native } : {}),
  };
}

function parseNative(value: string): NativeChoice {
  if (!(NATIVE_CHOICES as readonly string[]).includes(value)) throw new UserError(`expects ${NATIVE_CHOICES.join(' or ')}, got "${value}"`, '--native');
  return value as NativeChoice;
}

function parseSplitSamples(value: string): SplitSamples {
  if (!(SPLIT_SAMPLES_CHOICES as readonly string[]).includes(value)) throw new UserError(`expects ${SPLIT_SAMPLES_CHOICES.join(', ')}, got "${value}"`, '--split-samples');
  return value as SplitSamples;
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

function parseWorkers(value: string | undefined): number | 'auto' {
  if (value === undefined || value === 'auto') return 'auto';
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UserError(`expects a whole number from 1 to 64 or "auto", got "${value}"`, '--workers');
  return n;
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
        'min-steps': { type: 'string' },
        'sample-batch': { type: 'string' },
        alpha: { type: 'string' },
        tau: { type: 'string' },
        'sigma-max': { type: 'string' },
        'sigma-grid': { type: 'string' },
        'learning-rate': { type: 'string' },
        'input-range': { type: 'string' },
        normalize: { type: 'string' },
        preset: { type: 'string' },
        bgr: { type: 'boolean' },
        force: { type: 'boolean' },
        'input-size': { type: 'string' },
        resize: { type: 'string' },
        transparency: { type: 'string' },
        backend: { type: 'string' },
        metrics: { type: 'string', multiple: true },
        'train-images': { type: 'string', multiple: true },
        decoder: { type: 'string' },
        'decoder-blocks': { type: 'string' },
        'decoder-width': { type: 'string' },
        'decoder-epochs': { type: 'string' },
        'decoder-training': { type: 'string' },
        'decoder-cache': { type: 'string' },
        boxes: { type: 'string' },
        box: { type: 'string' },
        'target-class': { type: 'string' },
        workers: { type: 'string' },
        'split-samples': { type: 'string' },
        native: { type: 'string' },
        shard: { type: 'string' },
        python: { type: 'string' },
        'input-shape': { type: 'string' },
        weights: { type: 'string' },
        preview: { type: 'boolean' },
        'warm-start': { type: 'boolean' },
        'output-softmax': { type: 'boolean' },
        quiet: { type: 'boolean' },
        'no-resume': { type: 'boolean' },
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
  if (command !== 'analyze' && command !== 'layers') throw new UserError(`unknown command "${command}"; use "analyze", "layers", "merge", "compare-checkpoints" or "coherency" (see --help)`);
  if (!model) throw new UserError(`${command} needs a model file: infodiscard ${command} <model.json>`);
  if (extra.length > 0) throw new UserError(`unexpected argument "${extra[0]}"; give images with --images`);
  const backend = (v.backend ?? DEFAULT_SETTINGS.backend) as BackendChoice;
  let exportShape: number[] | undefined;
  if (v['input-shape'] !== undefined) {
    exportShape = parseInputShape(v['input-shape']);
    if (!exportShape) throw new UserError(`expects the export's input shape as NxCxHxW, e.g. 1x3x224x224, got "${v['input-shape']}"`, '--input-shape');
  }
  const source: ModelSource = {
    model,
    python: v.python ?? (process.env.INFODISCARD_PYTHON || 'python3'),
    ...(exportShape ? { exportShape } : {}),
    ...(v.weights !== undefined ? { weights: v.weights } : {}),
  };
  if (command === 'layers') return { command, ...source, backend };

  const images = list(v.images);
  if (images.length === 0) throw new UserError('is required: give image files (PNG, JPEG, BMP, GIF, TIFF, WebP) or a folder', '--images');

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
  if (v.preset !== undefined && (inputRange || normalize)) {
    throw new UserError(`give either --preset or ${inputRange ? '--input-range' : '--normalize'}, not both`, '--preset');
  }
  if (inputRange && normalize) throw new UserError('give either --input-range or --normalize, not both', '--normalize');
  let inputSize: [number, number] | undefined;
  if (v['input-size'] !== undefined) {
    const m = /^(\d+)x(\d+)$/.exec(v['input-size']);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new UserError(`expects HxW, e.g. 224x224, got "${v['input-size']}"`, '--input-size');
    inputSize = [Number(m[1]), Number(m[2])];
  }
  const imageOptions: ImageOptions = {
    ...(v.resize !== undefined ? parseResize(v.resize, '--resize') : {}),
    ...(v.transparency !== undefined ? { alpha: parseTransparency(v.transparency, '--transparency') } : {}),
  };
  const metrics = list(v.metrics) as MetricName[];
  let decoder: DecoderSettings | null = null;
  if (metrics.includes('ru')) {
    const preset = v.decoder ?? 'default';
    if (preset !== 'default' && preset !== 'light') throw new UserError(`expects default or light, got "${preset}"`, '--decoder');
    const base = preset === 'light' ? LIGHT_DECODER : DEFAULT_DECODER;
    decoder = {
      ...base,
      blocks: num(v['decoder-blocks'], '--decoder-blocks', base.blocks),
      width: num(v['decoder-width'], '--decoder-width', base.width),
      maxEpochs: num(v['decoder-epochs'], '--decoder-epochs', base.maxEpochs),
    };
    const training = v['decoder-training'];
    if (training !== undefined) {
      if (training !== 'noisy' && training !== 'clean') throw new UserError(`expects noisy or clean, got "${training}"`, '--decoder-training');
      decoder.training = training;
    }
  } else {
    for (const flag of ['train-images', 'decoder', 'decoder-blocks', 'decoder-width', 'decoder-epochs', 'decoder-training', 'decoder-cache'] as const) {
      if (v[flag] !== undefined) throw new UserError(`only applies to RU; add --metrics ru`, `--${flag}`);
    }
  }
  if ((v.boxes !== undefined || v.box !== undefined) && !metrics.includes('concentration')) {
    throw new UserError('only applies to concentration; add --metrics concentration', v.boxes !== undefined ? '--boxes' : '--box');
  }
  if (metrics.includes('concentration') && v.boxes === undefined && v.box === undefined) {
    throw new UserError('needs the object in each image: give --boxes file.json or --box x,y,w,h', '--metrics concentration');
  }
  if (v['target-class'] !== undefined && !metrics.includes('baselines')) throw new UserError('only applies to baselines; add --metrics baselines', '--target-class');
  const targetClass = v['target-class'] === undefined ? undefined : num(v['target-class'], '--target-class', NaN);
  if (targetClass !== undefined && !(Number.isInteger(targetClass) && targetClass >= 0)) {
    throw new UserError(`must be a whole number (an output index), got ${v['target-class']}`, '--target-class');
  }
  const d = DEFAULT_SETTINGS;
  const shard = v.shard !== undefined ? parseShard(v.shard) : undefined;
  if (shard && v.out !== undefined && /\.json$/i.test(v.out)) {
    throw new UserError(`with --shard, --out names the folder for the part files (e.g. --out parts), got "${v.out}"; merge them with "infodiscard merge parts --out report.json"`, '--out');
  }
  if (shard && v.html !== undefined) throw new UserError('a shard writes a part, not a report: give --html to "infodiscard merge"', '--html');
  return {
    command,
    ...source,
    images,
    layers: v.layers ? list(v.layers) : undefined,
    out: v.out ?? (shard ? 'infodiscard-parts' : 'infodiscard-report.json'),
    ...(shard ? { shard } : {}),
    html: v.html,
    inputSize,
    ...(Object.keys(imageOptions).length > 0 ? { imageOptions } : {}),
    quiet: !!v.quiet,
    resume: !v['no-resume'],
    workers: parseWorkers(v.workers),
    ...(v['split-samples'] !== undefined ? { splitSamples: parseSplitSamples(v['split-samples']) } : {}),
    ...(v.native !== undefined ? { native: parseNative(v.native) } : {}),
    trainImages: v['train-images'] ? list(v['train-images']) : undefined,
    decoderCacheDir: v['decoder-cache'],
    boxesFile: v.boxes,
    defaultRegion: v.box !== undefined ? parseBoxFlag(v.box) : undefined,
    targetClass,
    preprocessing: {
      preset: v.preset,
      bgr: !!v.bgr,
      force: !!v.force,
      explicit: v.preset !== undefined || inputRange !== null || normalize !== null,
    },
    settings: {
      alpha: num(v.alpha, '--alpha', d.alpha),
      tau: num(v.tau, '--tau', d.tau),
      samples: num(v.samples, '--samples', d.samples),
      maxSteps: num(v['max-steps'], '--max-steps', d.maxSteps),
      ...(v['min-steps'] !== undefined ? { minSteps: num(v['min-steps'], '--min-steps', NaN) } : {}),
      ...(v['sample-batch'] !== undefined ? { sampleBatch: num(v['sample-batch'], '--sample-batch', NaN) } : {}),
      seed: num(v.seed, '--seed', d.seed),
      backend,
      inputRange,
      normalize,
      sigmaGrid: v['sigma-grid'] === undefined ? null : num(v['sigma-grid'], '--sigma-grid', NaN),
      sigmaMax: num(v['sigma-max'], '--sigma-max', d.sigmaMax),
      learningRate: num(v['learning-rate'], '--learning-rate', d.learningRate),
      metrics: metrics.length > 0 ? metrics : d.metrics,
      decoder,
      preview: !!v.preview,
      warmStart: !!v['warm-start'],
      ...(v['output-softmax'] ? { outputSoftmax: true } : {}),
    },
  };
}
