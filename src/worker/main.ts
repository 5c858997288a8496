/**
 * The analysis worker: a Node process the extension forks so that a long analysis (and its memory) never runs
 * in the extension host. It speaks the protocol in src/protocol.ts over the IPC channel and runs one request at a
 * time (an analysis, a coherency check, a layer listing), because the engine uses TensorFlow.js's global state
 * (backend, variables); later requests wait in a queue here.
 */
import { analyze } from '../engine/analyze';
import { selectBackend } from '../engine/backend';
import { checkCoherency, convLayerNames, formatCoherencyTable, writeCoherencyResult } from '../engine/coherency';
import { CancelledError, isUserError } from '../engine/errors';
import type { AnalysisEvent } from '../engine/events';
import { loadModel } from '../engine/loaders';
import { recommendedFor } from '../engine/recommendedLayers';
import { writeReport } from '../engine/reportFile';
import { checkPreprocessingFiles } from '../engine/preprocessing/check';
import { defaultProfile } from '../engine/preprocessing/presets';
import type { SampleShare } from '../engine/sampleShare';
import { decodeFloats, encodeFloats } from '../protocol';
import type { AnalyzeParams, CoherencyParams, CoherencyRun, FromWorker, LayersParams, ModelLayer, ModelLayers, PreprocessingOutcome, PreprocessingParams, ToWorker } from '../protocol';

/** At most ~10 step events per second: enough for a live progress bar, cheap over IPC. */
const STEP_INTERVAL_MS = 100;
/** After a shutdown, how long the running analysis gets to notice the abort and mark its report cancelled. */
const SHUTDOWN_GRACE_MS = 2000;

type Request = Extract<ToWorker, { kind: 'analyze' | 'layers' | 'coherency' | 'checkPreprocessing' }>;

interface Job {
  id: number;
  request: Request;
  controller: AbortController;
}

const queue: Job[] = [];
let current: Job | undefined;
let stopping = false;

function send(message: FromWorker): void {
  // After the extension host has gone, sends fail; the disconnect handler is already exiting.
  if (process.connected) process.send!(message, undefined, undefined, () => {});
}

function firstLine(text: string): string {
  return text.split('\n')[0].trim();
}

/** The message that ends a request that was cancelled (or never ran). */
function cancelledMessage(job: Job): FromWorker {
  const { request: r, id } = job;
  if (r.kind === 'analyze') return { kind: 'finished', id, status: 'cancelled', reportPath: r.params.reportPath };
  if (r.kind === 'coherency') return { kind: 'coherencyFinished', id, status: 'cancelled' };
  if (r.kind === 'checkPreprocessing') return { kind: 'preprocessing', id, status: 'cancelled' };
  return { kind: 'layers', id, status: 'cancelled' };
}

/** Only an analysis has a report file that keeps the layers finished before a failure. */
function reportPathOf(job: Job): string | undefined {
  return job.request.kind === 'analyze' ? job.request.params.reportPath : undefined;
}

/**
 * The wasm backend's Emscripten glue installs uncaughtException/unhandledRejection handlers that rethrow, which
 * makes Node print the whole minified module source and exit. Keep only ours (it reports the error instead).
 */
function claimProcessErrors(): void {
  for (const l of process.listeners('uncaughtException')) if (l !== onUncaught) process.off('uncaughtException', l);
  for (const l of process.listeners('unhandledRejection')) if (l !== onUnhandled) process.off('unhandledRejection', l);
}

function onUncaught(e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`uncaught exception: ${err.stack ?? err.message}\n`);
  if (current) {
    const reportPath = reportPathOf(current);
    send({ kind: 'failed', id: current.id, code: 'internal', message: firstLine(err.message) || err.name, detail: err.stack, ...(reportPath ? { reportPath } : {}) });
  }
  // The process state is unknown after an uncaught exception: leave, the client replaces this worker.
  process.exit(1);
}

function onUnhandled(reason: unknown): void {
  // Every analysis promise is awaited and caught, so this is a stray promise (a library's); log it, carry on.
  process.stderr.write(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}\n`);
}

/** An event sink that forwards engine events as `event` messages (steps throttled), tagged with `run()`. */
function eventForwarder(id: number, run?: () => CoherencyRun | undefined): (event: AnalysisEvent) => void {
  let lastStep = -Infinity;
  return (event) => {
    if (event.type === 'step') {
      const now = performance.now();
      if (now - lastStep < STEP_INTERVAL_MS) return;
      lastStep = now;
    } else if (event.type === 'started') {
      // The backend is initialised by now, so the wasm glue's handlers (if any) are installed: remove them.
      claimProcessErrors();
      lastStep = -Infinity;
    }
    const tag = run?.();
    send(tag ? { kind: 'event', id, event, run: tag } : { kind: 'event', id, event });
  };
}

/** The team sums the running analysis waits for, by round (AnalyzeParams.team): answered by 'reduced' messages. */
let teamRounds: { id: number; waiting: Map<number, (values: Float64Array) => void> } | undefined;

/** This worker's share of a team (src/engine/sampleShare.ts): partial sums go to the pool, the team's sum comes back. */
function teamShare(id: number, team: NonNullable<AnalyzeParams['team']>, signal: AbortSignal): SampleShare {
  const waiting = new Map<number, (values: Float64Array) => void>();
  teamRounds = { id, waiting };
  let round = 0;
  return {
    member: team.member,
    members: team.members,
    allReduce: (values) =>
      new Promise<Float64Array>((resolve, reject) => {
        if (signal.aborted) return reject(new CancelledError());
        const r = round++;
        // A cancel (the user's, or the pool's when another member stopped) ends the wait.
        const onAbort = () => {
          waiting.delete(r);
          reject(new CancelledError());
        };
        signal.addEventListener('abort', onAbort, { once: true });
        waiting.set(r, (sum) => {
          signal.removeEventListener('abort', onAbort);
          waiting.delete(r);
          resolve(sum);
        });
        send({ kind: 'reduce', id, round: r, values: encodeFloats(values) });
      }),
  };
}

async function runAnalyze(id: number, params: AnalyzeParams, signal: AbortSignal): Promise<void> {
  const { reportPath, team, ...request } = params;
  try {
    // AnalyzeParams is the serialisable part of the engine's AnalyzeRequest.
    await analyze({ ...request, reportPath, onEvent: eventForwarder(id), signal, ...(team && team.members > 1 ? { share: teamShare(id, team, signal) } : {}) });
  } finally {
    teamRounds = undefined;
  }
  send({ kind: 'finished', id, status: 'complete', reportPath });
}

/**
 * The model's layers, and for each conv layer whether the coherency check can rescale it: the loader's hook is
 * tried with factor 1 (which leaves the weights as they are) on this throw-away copy of the model.
 */
async function listLayers(params: LayersParams): Promise<ModelLayers> {
  const backend = await selectBackend(params.backend ?? 'auto', { gpu: params.gpu });
  claimProcessErrors();
  const model = await loadModel(params.modelPath, { weights: params.weightsPath });
  try {
    const checkRescale = params.checkRescale !== false;
    const convs = new Set(convLayerNames(model));
    const prefix = `${model.path}: `;
    const rec = recommendedFor(model);
    const blockOf = new Map(rec.blocks.flatMap((b) => b.layers.map((name) => [name, b.name] as const)));
    const layers = model.layers.map((l): ModelLayer => {
      const out: ModelLayer = {
        name: l.name,
        kind: l.kind,
        outputShape: [...l.outputShape],
        conv: convs.has(l.name),
        recommended: rec.reasons.has(l.name),
        ...(rec.reasons.has(l.name) ? { why: rec.reasons.get(l.name) } : {}),
        ...(blockOf.has(l.name) ? { block: blockOf.get(l.name) } : {}),
        ...(l.outputShape.length === 2 && model.tokenGrid?.(l.name) ? { tokenGrid: model.tokenGrid(l.name)! } : {}),
      };
      if (!out.conv || !checkRescale || !model.rescaleConvPair) return out;
      try {
        const pair = model.rescaleConvPair(l.name, 1);
        out.rescale = { second: pair.second, between: pair.between };
      } catch (e) {
        if (!isUserError(e)) throw e;
        const line = firstLine(e.message);
        out.notRescalable = line.startsWith(prefix) ? line.slice(prefix.length) : line;
      }
      return out;
    });
    const { height, width, channels } = model.input;
    return {
      modelPath: model.path,
      format: model.format,
      input: { height, width, channels },
      layers,
      backend,
      ...(model.rescaleConvPair || !checkRescale
        ? {}
        : { rescaleUnsupported: `${model.format} models cannot have their weights changed in memory; the coherency check supports TensorFlow.js layers and graph models, Keras .h5/.keras and ONNX files` }),
    };
  } finally {
    model.dispose();
  }
}

/** The preprocessing check: the chosen (else detected, else [0,1]) profile and the alternatives, with top predictions. */
async function runPreprocessingCheck(params: PreprocessingParams): Promise<PreprocessingOutcome> {
  await selectBackend(params.backend ?? 'auto');
  claimProcessErrors();
  const base = { modelPath: params.modelPath, images: params.images, inputSize: params.inputSize, alternatives: params.alternatives };
  let result = await checkPreprocessingFiles({ ...base, profile: params.profile ?? defaultProfile() });
  if (!params.profile && result.detected) result = await checkPreprocessingFiles({ ...base, profile: result.detected });
  const { detected, ...check } = result;
  return { detected, check };
}

async function runCoherencyJob(id: number, params: CoherencyParams, signal: AbortSignal): Promise<void> {
  let run: CoherencyRun | undefined;
  // The output paths are the worker's business; the rest is the engine's request.
  const { resultPath, originalReportPath, rescaledReportPath, ...request } = params;
  const result = await checkCoherency({
    ...request,
    onEvent: eventForwarder(id, () => run),
    onPhase: (phase) => {
      run = phase === 'check' ? undefined : phase;
      // The numerical check loads the backend first: drop the wasm glue's handlers before anything runs.
      claimProcessErrors();
      send({ kind: 'coherencyPhase', id, phase });
    },
    signal,
  });
  if (signal.aborted) throw new CancelledError();
  // The reports first, the result last: a result file always comes with its two reports.
  writeReport(originalReportPath, result.original);
  writeReport(rescaledReportPath, result.rescaled);
  writeCoherencyResult(resultPath, result);
  send({
    kind: 'coherencyFinished',
    id,
    status: 'complete',
    resultPath,
    originalReportPath,
    rescaledReportPath,
    outcome: {
      rescale: result.rescale,
      outputCheck: result.outputCheck,
      summary: result.summary,
      coherent: result.coherent,
      seconds: result.seconds,
      table: formatCoherencyTable(result),
    },
  });
}

async function runJob(job: Job): Promise<void> {
  const { id, request } = job;
  const { signal } = job.controller;
  if (signal.aborted) {
    send(cancelledMessage(job));
    return;
  }
  const reportPath = reportPathOf(job);
  try {
    switch (request.kind) {
      case 'analyze':
        await runAnalyze(id, request.params, signal);
        break;
      case 'layers':
        send({ kind: 'layers', id, status: 'complete', model: await listLayers(request.params) });
        break;
      case 'coherency':
        await runCoherencyJob(id, request.params, signal);
        break;
      case 'checkPreprocessing':
        send({ kind: 'preprocessing', id, status: 'complete', outcome: await runPreprocessingCheck(request.params) });
        break;
    }
  } catch (e) {
    if (e instanceof CancelledError) {
      send(cancelledMessage(job));
    } else if (isUserError(e)) {
      send({ kind: 'failed', id, code: 'user', message: firstLine(e.message), ...(reportPath ? { reportPath } : {}) });
    } else {
      const err = e instanceof Error ? e : new Error(String(e));
      send({ kind: 'failed', id, code: 'internal', message: firstLine(err.message) || err.name, detail: err.stack, ...(reportPath ? { reportPath } : {}) });
    }
  } finally {
    claimProcessErrors();
  }
}

let draining = false;
async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  try {
    for (let job = queue.shift(); job && !stopping; job = queue.shift()) {
      current = job;
      await runJob(job);
      current = undefined;
    }
  } finally {
    draining = false;
    current = undefined;
  }
  if (stopping) process.exit(0);
}

/** Abort everything and exit once the running analysis has written its report as cancelled (or after a grace). */
function stop(): void {
  if (stopping) return;
  stopping = true;
  for (const job of queue.splice(0)) send(cancelledMessage(job));
  if (!current) process.exit(0);
  current.controller.abort();
  setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS).unref();
}

function onMessage(message: ToWorker): void {
  switch (message?.kind) {
    case 'analyze':
    case 'layers':
    case 'coherency':
    case 'checkPreprocessing':
      if (stopping) return;
      queue.push({ id: message.id, request: message, controller: new AbortController() });
      void drain().catch(onUncaught);
      return;
    case 'cancel': {
      if (current?.id === message.id) {
        current.controller.abort();
        return;
      }
      const i = queue.findIndex((j) => j.id === message.id);
      if (i >= 0) {
        const [job] = queue.splice(i, 1);
        send(cancelledMessage(job));
      }
      return;
    }
    case 'shutdown':
      stop();
      return;
    case 'reduced':
      if (teamRounds?.id === message.id) teamRounds.waiting.get(message.round)?.(decodeFloats(message.values));
      return;
  }
}

if (!process.send) {
  process.stderr.write('infodiscard worker: start me with child_process.fork (I need an IPC channel)\n');
  process.exit(2);
}
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUnhandled);
process.on('message', (m) => {
  try {
    onMessage(m as ToWorker);
  } catch (e) {
    onUncaught(e);
  }
});
// No worker outlives the extension host: when the IPC channel closes, stop.
process.on('disconnect', stop);
// The worker is driven over IPC only. A terminal's Ctrl-C reaches the whole process group, this worker included
// (the CLI's --workers); the parent turns it into a 'cancel' so the finished layers are kept, so ignore it here.
process.on('SIGINT', () => {});
send({ kind: 'ready', pid: process.pid });
