/**
 * infodiscard's command line: the same engine as the extension, headless. User mistakes print one line
 * ("infodiscard: <file>: <what is wrong and what to do>") and exit 2; internal errors exit 1; Ctrl-C cancels
 * and keeps the layers already written to the report.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { analyze } from '../engine/analyze';
import { selectBackend } from '../engine/backend';
import { CancelledError, isUserError } from '../engine/errors';
import { loadModel } from '../engine/loaders';
import { recommendedFor } from '../engine/recommendedLayers';
import { featureShapeText } from '../engine/featureShape';
import type { Report } from '../engine/report';
import { readReport } from '../engine/reportFile';
import { VERSION } from '../engine/version';
import { loadWebviewBundle, renderReportHtml } from '../report-html/render';
import { analyzeParams, parseCli, USAGE, type AnalyzeArgs, type ModelSource } from './args';
import { exportPyTorchToOnnx, isPyTorchFile, notExportableReason, requirePyTorchFile, snippetFor } from '../engine/pytorch/export';
import { UserError } from '../engine/errors';
import os from 'node:os';
import { progressPrinter } from './progress';
import { runCoherency } from './coherency';
import { analyzeInWorkers, coreCount } from './parallel';
import { abortOnInterrupt } from './interrupt';
import { runMerge } from './merge';
import { runCompareCheckpoints } from './checkpoints';
import { runShard } from './shard';
import { resolveAndCheck } from './preprocessing';

function writeHtml(file: string, report: Report): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, renderReportHtml(report, loadWebviewBundle()));
}

/**
 * A PyTorch file is exported to ONNX first (the command printed on stderr, the ONNX kept in `outDir`/pytorch and
 * reused while the file is unchanged); a state_dict prints the snippet that exports it (stdout) and fails in one
 * line. Any other model is returned as it is.
 */
async function modelToAnalyse(src: ModelSource, outDir: string, quiet: boolean): Promise<string> {
  if (!isPyTorchFile(src.model)) return src.model;
  const info = requirePyTorchFile(src.model);
  const why = notExportableReason(info);
  if (why) {
    if (info.kind !== 'aoti-package') process.stdout.write(snippetFor(info, src.exportShape));
    throw new UserError(`${why}${info.kind !== 'aoti-package' ? ' (the snippet is printed above)' : ''}`, src.model);
  }
  const result = await exportPyTorchToOnnx(src.model, {
    python: src.python,
    inputShape: src.exportShape,
    outDir,
    log: (line) => {
      if (line.startsWith('$ ') || line.startsWith('reusing ')) process.stderr.write(`${line}\n`);
      else if (!quiet) process.stderr.write(`  ${line}\n`);
    },
  });
  process.stderr.write(`${result.reused ? 'Reusing the ONNX export' : 'Exported to ONNX'}: ${result.onnxPath}\n`);
  return result.onnxPath;
}

async function runAnalyze(given: AnalyzeArgs): Promise<number> {
  const model = await modelToAnalyse(given, path.dirname(path.resolve(given.out)), given.quiet);
  const exported: AnalyzeArgs = { ...given, model };
  // Which preprocessing, and whether the model's outputs look sane with it, before the long run.
  const { settings } = await resolveAndCheck(exported, (line) => process.stdout.write(`${line}\n`));
  const args: AnalyzeArgs = { ...exported, settings };
  if (args.shard) {
    const controller = abortOnInterrupt('Cancelling (the finished jobs are kept; rerun the shard to continue)');
    const part = await runShard(args, args.shard, controller.signal);
    process.stdout.write(`Part: ${part}\n`);
    return 0;
  }
  const controller = abortOnInterrupt('Cancelling (the finished layers stay in the report)');
  let report: Report | undefined;
  const onProgress = progressPrinter(process.stderr, args.quiet, { recommended: args.layers === undefined });
  try {
    const workers = args.workers === 'auto' ? coreCount() : args.workers;
    report = workers > 1
      ? await analyzeInWorkers(args, workers, onProgress, controller.signal)
      : await analyze({ ...analyzeParams(args), signal: controller.signal, onEvent: onProgress });
  } finally {
    // Whatever happened, the HTML page shows what the report file holds.
    if (args.html) {
      try {
        writeHtml(args.html, report ?? readReport(args.out));
      } catch {
        // No report was started (the error came before the first layer): nothing to show.
      }
    }
  }
  process.stdout.write(`Report: ${path.resolve(args.out)}\n`);
  if (args.html) process.stdout.write(`HTML:   ${path.resolve(args.html)}\n`);
  return 0;
}

async function runLayers(src: ModelSource, backend: AnalyzeArgs['settings']['backend']): Promise<number> {
  const model = await modelToAnalyse(src, path.join(os.tmpdir(), 'infodiscard-exports'), true);
  await selectBackend(backend);
  const m = await loadModel(model, { weights: src.weights });
  try {
    const { height, width, channels, flat } = m.input;
    process.stdout.write(`${m.path} (${m.format}), input ${height ?? '?'}x${width ?? '?'}x${channels}${flat ? ' (flattened)' : ''}\n`);
    const rec = recommendedFor(m);
    for (const l of m.layers) {
      const mark = rec.reasons.has(l.name) ? `  * recommended: ${rec.reasons.get(l.name)}` : '';
      process.stdout.write(`${mark ? '* ' : '  '}${l.name.padEnd(32)} ${l.kind.padEnd(22)} ${featureShapeText(l.outputShape, m.tokenGrid?.(l.name))}${mark}\n`);
    }
    process.stdout.write(`* ${rec.names.length} of ${m.layers.length} layers recommended (block outputs): the default of "analyze"; --layers all analyses every layer\n`);
  } finally {
    m.dispose();
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'coherency') return runCoherency(argv.slice(1));
  if (argv[0] === 'merge') return runMerge(argv.slice(1), writeHtml);
  if (argv[0] === 'compare-checkpoints') return runCompareCheckpoints(argv.slice(1));
  const args = parseCli(argv);
  switch (args.command) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'layers':
      return runLayers(args, args.backend);
    case 'analyze':
      return runAnalyze(args);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof CancelledError) {
      process.stderr.write('infodiscard: cancelled; the finished layers are in the report\n');
      process.exit(130);
    }
    if (isUserError(e)) {
      process.stderr.write(`infodiscard: ${e.message}\n`);
      process.exit(2);
    }
    const err = e as Error;
    process.stderr.write(`infodiscard: internal error: ${err.message.split('\n')[0]}\n`);
    if (process.env.INFODISCARD_DEBUG) process.stderr.write(`${err.stack}\n`);
    else process.stderr.write('infodiscard: set INFODISCARD_DEBUG=1 for the stack trace, and please report it\n');
    process.exit(1);
  },
);
