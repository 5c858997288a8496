/** Draws analysis progress on stderr from the engine's events: a live line on a terminal, plain lines otherwise. */
import type { AnalysisEvent } from '../engine/events';
import type { RunStats } from '../engine/report';
import { peakRssMB } from '../engine/runStats';
import { boundPrefix, isFlagged } from '../engine/quality';
import { formatDuration } from '../engine/duration';
import { progressText, ProgressTracker, runningLayersText } from '../engine/progressEstimate';

/** "; first layer after 3.1 s; peak memory 2 workers 402 + 388 MB, this process 61 MB: 851 MB in all". */
export function runSummary(run: RunStats | undefined, self = process.pid, selfPeakMB = peakRssMB()): string {
  if (!run) return '';
  const first = run.firstLayerSeconds !== undefined ? `; first layer after ${run.firstLayerSeconds.toFixed(1)} s` : '';
  const workers = run.processes.filter((p) => p.pid !== self);
  if (workers.length === 0) return `${first}; peak memory ${selfPeakMB} MB`;
  const total = workers.reduce((a, p) => a + p.peakRssMB, 0) + selfPeakMB;
  const each = workers.map((p) => p.peakRssMB).join(' + ');
  return `${first}; peak memory ${workers.length} worker${workers.length > 1 ? 's' : ''} ${each} MB, this process ${selfPeakMB} MB: ${total} MB in all`;
}

export interface ProgressOptions {
  /** The layers are the recommended set chosen by default: say so, and how to get every layer. */
  recommended?: boolean;
}

export function progressPrinter(stream: NodeJS.WriteStream, quiet: boolean, options: ProgressOptions = {}): (e: AnalysisEvent) => void {
  const tty = stream.isTTY === true;
  let lastDraw = 0;
  let images = 1;
  const tracker = new ProgressTracker();
  const started = performance.now();
  const clear = () => {
    if (tty) stream.write('\r\x1b[2K');
  };
  return (e) => {
    if (quiet) return;
    switch (e.type) {
      case 'started':
        images = e.images;
        tracker.started(e.layers.length, e.images);
        stream.write(`Analysing ${e.layers.length} layer(s) on ${e.images} image(s) with ${backendPhrase(e.backend)}\n`);
        if (options.recommended) stream.write(`Layers: the recommended set (block outputs; --layers all for every layer): ${e.layers.join(', ')}\n`);
        if (e.reused?.length) stream.write(`Resuming: ${e.reused.length} layer(s) taken over from the earlier report at the same output\n`);
        break;
      case 'layerStarted':
        tracker.layerStarted(e.layer);
        break;
      case 'step': {
        if (!tty) break;
        const now = performance.now();
        if (now - lastDraw < 100) break;
        lastDraw = now;
        const est = tracker.step(e);
        // --workers: several layers at once, all named (shortened).
        const running = tracker.running();
        const width = 20;
        const filled = Math.min(width, Math.round((e.step / est.expectedSteps) * width));
        clear();
        stream.write(
          `  ${running.length > 1 ? runningLayersText(running) : e.layer} ${(e.metric ?? 'sid').toUpperCase()} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] image ${e.image + 1}/${images} ${progressText(est, e.step, e.maxSteps, formatDuration)}  ratio ${e.ratio.toFixed(2)}`,
        );
        break;
      }
      case 'decoderEpoch': {
        const line = `  ${e.layer} decoder epoch ${e.epoch}/${e.maxEpochs}  loss ${e.trainLoss.toExponential(2)}  held-out ${e.heldOutLoss.toExponential(2)}`;
        if (tty) {
          clear();
          stream.write(line);
        }
        break;
      }
      case 'phase':
        if (e.phase === 'decoder' && e.detail) {
          clear();
          stream.write(`  ${e.layer}: ${e.detail}\n`);
        }
        break;
      case 'layerSkipped':
        tracker.layerEnded(undefined, e.layer);
        clear();
        stream.write(`[${e.index + 1}/${e.total}] ${e.layer.padEnd(24)} skipped: ${e.reason}\n`);
        break;
      case 'warning':
        // A skipped layer has its own line (layerSkipped).
        if (e.layer !== undefined && e.message.startsWith('skipped: ')) break;
        clear();
        stream.write(`warning: ${e.layer ? `layer "${e.layer}": ` : ''}${e.message}\n`);
        break;
      case 'layerDone': {
        clear();
        const r = e.result;
        tracker.layerEnded(r.reused ? undefined : r.perImage, e.layer);
        const ratio = r.perImage.reduce((a, p) => a + p.constraintRatio, 0) / r.perImage.length;
        const steps = r.perImage.reduce((a, p) => a + p.steps, 0);
        const secs = r.perImage.reduce((a, p) => a + p.seconds, 0);
        const preview = r.perImage.length > 0 && r.perImage.every((p) => p.stopReason === 'preview');
        const extra = [
          preview ? 'first-order preview: an approximation, not optimised' : '',
          r.feature?.kind === 'logits' ? `feature: logits, ${r.feature.note ?? 'the scores before the softmax'} (--output-softmax for the probabilities)` : '',
          r.ru ? `RU ${boundPrefix(r.ruQuality)}${r.ru.mean.toFixed(3)} ± ${r.ru.std.toFixed(3)} (decoder ${r.ru.decoder.psnr.toFixed(1)} dB)` : '',
          r.concentration ? `conc ${r.concentration.mean.toFixed(3)}` : '',
          r.baselines ? `|grad| ${r.baselines.gradNorm.mean.toPrecision(3)}` : '',
        ].filter((x) => x).join('  ');
        // One ⚠ line per flagged image result (SID, then RU), with the reason; bounds print with "≥".
        const warnings: string[] = [];
        for (const p of r.perImage) {
          if (isFlagged(p.quality)) warnings.push(`      ⚠ image ${p.image + 1} SID ${boundPrefix(p.quality)}${p.sidMean.toFixed(3)} ${p.quality!.verdict}: ${p.quality!.reason ?? ''}`);
          if (p.ru && isFlagged(p.ru.quality)) warnings.push(`      ⚠ image ${p.image + 1} RU ${boundPrefix(p.ru.quality)}${(p.ruMean ?? NaN).toFixed(3)} ${p.ru.quality!.verdict}: ${p.ru.quality!.reason ?? ''}`);
        }
        stream.write(
          `[${e.index + 1}/${e.total}] ${r.name.padEnd(24)} ${r.reused ? 'reused  ' : ''}SID ${boundPrefix(r.quality)}${r.sid.mean.toFixed(3)} ± ${r.sid.std.toFixed(3)} nats/pixel  ratio ${ratio.toFixed(3)}  ${steps} steps  ${formatDuration(secs)}${extra ? `\n      ${extra}` : ''}\n${warnings.map((w) => `${w}\n`).join('')}`,
        );
        break;
      }
      case 'done':
        clear();
        stream.write(`Done in ${formatDuration((performance.now() - started) / 1000)}${runSummary(e.report.run)}\n`);
        break;
      default:
        break;
    }
  };
}

/** "the wasm backend", or with worker processes "the wasm backend in 2 worker processes, …" (src/worker/parallel.ts). */
export function backendPhrase(backend: string): string {
  const m = /^(.*?), (\d+ worker processes.*)$/.exec(backend);
  return m ? `the ${m[1]} backend in ${m[2]}` : `the ${backend} backend`;
}
