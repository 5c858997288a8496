/**
 * `infodiscard coherency`: the paper's coherency check from the command line. Rescales a pair of neighbouring conv
 * layers (kernel and bias of --first / k, the next conv's kernel x k), checks that the network output is unchanged,
 * analyses the original and the rescaled model with the same settings and seed, prints a table of the per-layer
 * metrics with a verdict each, and writes the whole result (both reports included) as JSON.
 *
 * Options of its own: --first, --factor, --out. Everything else (images, layers, metrics, seed, steps ...) is
 * parsed by the analyze command's parser, so the two commands accept the same analysis options.
 */
import path from 'node:path';
import { profileSettings } from '../engine/preprocessing/presets';
import { explicitOrStoredProfile } from './preprocessing';
import { parseArgs } from 'node:util';
import { checkCoherency, DEFAULT_COHERENCY_FACTOR, formatCoherencyTable, writeCoherencyResult, type CoherencyPhase } from '../engine/coherency';
import { CancelledError, UserError, isUserError } from '../engine/errors';
import { analyzeParams, parseCli, type AnalyzeArgs } from './args';
import { abortOnInterrupt } from './interrupt';
import { progressPrinter } from './progress';

export const COHERENCY_USAGE = `infodiscard coherency — the paper's coherency check: rescale two neighbouring conv layers
(w_L / k, b_L / k, w_L+1 x k), which leaves the network output unchanged, and compare every layer's metrics

Usage:
  infodiscard coherency <model> --images <files|folder> --first <conv layer> [options]

Options:
  --first <layer>        the conv layer L to scale down (required; "infodiscard layers <model>" lists the layers);
                         the next conv or dense layer is scaled up; only ReLU, leaky ReLU, pooling, padding,
                         dropout and reshapes may lie between them
  --factor k             the rescale factor (default ${DEFAULT_COHERENCY_FACTOR}, the paper's)
  --out <file.json>      where the result is written, both reports included (default infodiscard-coherency.json)
  --metrics m,...        sid, ru, baselines (default sid); compared layer by layer
  --layers a,b           layers to analyse and compare (default: all)
  and the analysis options of "infodiscard analyze" (--seed, --max-steps, --samples, --alpha, --tau,
  --input-range, --normalize, --input-size, --backend, --quiet ...; see "infodiscard --help")

Verdicts: SID and RU (nats per pixel) are unchanged when they move by at most max(0.05, 3 x noise);
gradient-based magnitudes are unchanged when they move by at most 10 %.
`;

const OWN_OPTIONS = ['first', 'factor', 'out'] as const;

export interface CoherencyArgs {
  command: 'coherency';
  analyze: AnalyzeArgs;
  first: string;
  factor: number;
  out: string;
}

/** Parses the arguments after "coherency". Throws a one-line UserError naming the option. */
export function parseCoherencyArgs(argv: string[]): CoherencyArgs | { command: 'help' } {
  // Split off this command's own options; the rest goes to the analyze parser.
  const own: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const name = OWN_OPTIONS.find((o) => a === `--${o}` || a.startsWith(`--${o}=`));
    if (!name) {
      rest.push(a);
      continue;
    }
    if (a.includes('=')) own.push(a);
    else {
      const value = argv[i + 1];
      if (value === undefined) throw new UserError(name === 'first' ? 'expects a layer name' : 'expects a value', `--${name}`);
      own.push(`--${name}=${value}`);
      i++;
    }
  }
  if (rest.includes('--help') || rest.includes('-h')) return { command: 'help' };
  let values: { first?: string; factor?: string; out?: string };
  try {
    ({ values } = parseArgs({
      args: own,
      strict: true,
      allowPositionals: false,
      options: { first: { type: 'string' }, factor: { type: 'string' }, out: { type: 'string' } },
    }));
  } catch (e) {
    throw new UserError(`${(e as Error).message.split('\n')[0].replace(/\.$/, '')}; see "infodiscard coherency --help"`);
  }

  let parsed;
  try {
    parsed = parseCli(['analyze', ...rest]);
  } catch (e) {
    // The analyze parser's messages name its command; say coherency instead.
    if (isUserError(e)) throw new UserError(e.message.replace(/^analyze needs/, 'coherency needs').replace(/infodiscard analyze/g, 'infodiscard coherency'));
    throw e;
  }
  if (parsed.command !== 'analyze') return { command: 'help' };
  if (parsed.html !== undefined) throw new UserError('is not available for coherency (the result is JSON, written to --out)', '--html');

  const first = values.first?.trim();
  if (!first) throw new UserError('is required: the conv layer to rescale (list the layers with "infodiscard layers <model>")', '--first');
  let factor = DEFAULT_COHERENCY_FACTOR;
  if (values.factor !== undefined) {
    factor = Number(values.factor);
    if (values.factor.trim() === '' || !Number.isFinite(factor) || factor <= 0) {
      throw new UserError(`expects a positive number, got "${values.factor}"`, '--factor');
    }
  }
  const out = values.out ?? 'infodiscard-coherency.json';
  if (out.trim() === '') throw new UserError('expects a file name', '--out');
  return { command: 'coherency', analyze: parsed, first, factor, out };
}

const PHASE_TEXT: Record<CoherencyPhase, string> = {
  check: 'Checking that the rescale leaves the network output unchanged',
  original: 'Analysing the original model',
  rescaled: 'Analysing the rescaled model',
};

/** Runs `infodiscard coherency ...` (argv after the command name); returns the exit code. */
export async function runCoherency(argv: string[]): Promise<number> {
  const args = parseCoherencyArgs(argv);
  if (args.command === 'help') {
    process.stdout.write(COHERENCY_USAGE);
    return 0;
  }
  const controller = abortOnInterrupt('Cancelling');
  // No report file: the result (with both reports) goes to --out.
  // The preprocessing flags (--preset, --bgr) or the model's stored profile, as analyze uses them (no check here:
  // both runs see the same inputs, and the numerical check of the rescale runs first).
  const given = await explicitOrStoredProfile(args.analyze);
  if (given) args.analyze.settings = { ...args.analyze.settings, ...profileSettings(given.profile) };
  const { reportPath: _reportPath, ...params } = analyzeParams(args.analyze);
  // The check compares every layer unless --layers says otherwise (the recommended default is analyze's).
  const analysis = { ...params, layers: args.analyze.layers };
  const quiet = args.analyze.quiet;
  const onEvent = progressPrinter(process.stderr, quiet);
  let result;
  try {
    result = await checkCoherency({
      ...analysis,
      first: args.first,
      factor: args.factor,
      signal: controller.signal,
      onEvent,
      onPhase: (phase) => {
        if (!quiet) process.stderr.write(`${PHASE_TEXT[phase]}\n`);
      },
    });
  } catch (e) {
    if (e instanceof CancelledError) {
      process.stderr.write('infodiscard: cancelled; no coherency result was written\n');
      return 130;
    }
    throw e;
  }
  writeCoherencyResult(args.out, result);
  process.stdout.write(formatCoherencyTable(result));
  process.stdout.write(`Result: ${path.resolve(args.out)}\n`);
  return 0;
}
