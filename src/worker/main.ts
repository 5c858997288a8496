/**
 * The analysis worker: a Node process the extension forks so that a long analysis (and its memory) never runs
 * in the extension host. It speaks the protocol in src/protocol.ts over the IPC channel and runs one analysis
 * at a time, because the engine uses TensorFlow.js's global state (backend, variables); later requests wait in
 * a queue here.
 */
import { analyze } from '../engine/analyze';
import { CancelledError, isUserError } from '../engine/errors';
import type { AnalysisEvent } from '../engine/events';
import type { AnalyzeParams, FromWorker, ToWorker } from '../protocol';

/** At most ~10 step events per second: enough for a live progress bar, cheap over IPC. */
const STEP_INTERVAL_MS = 100;
/** After a shutdown, how long the running analysis gets to notice the abort and mark its report cancelled. */
const SHUTDOWN_GRACE_MS = 2000;

interface Job {
  id: number;
  params: AnalyzeParams;
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
    send({ kind: 'failed', id: current.id, code: 'internal', message: firstLine(err.message) || err.name, detail: err.stack, reportPath: current.params.reportPath });
  }
  // The process state is unknown after an uncaught exception: leave, the client replaces this worker.
  process.exit(1);
}

function onUnhandled(reason: unknown): void {
  // Every analysis promise is awaited and caught, so this is a stray promise (a library's); log it, carry on.
  process.stderr.write(`unhandled rejection: ${reason instanceof Error ? reason.stack : String(reason)}\n`);
}

async function runJob(job: Job): Promise<void> {
  const { id, params } = job;
  const { reportPath } = params;
  if (job.controller.signal.aborted) {
    send({ kind: 'finished', id, status: 'cancelled', reportPath });
    return;
  }
  let lastStep = -Infinity;
  const onEvent = (event: AnalysisEvent) => {
    if (event.type === 'step') {
      const now = performance.now();
      if (now - lastStep < STEP_INTERVAL_MS) return;
      lastStep = now;
    } else if (event.type === 'started') {
      // The backend is initialised by now, so the wasm glue's handlers (if any) are installed: remove them.
      claimProcessErrors();
    }
    send({ kind: 'event', id, event });
  };
  try {
    await analyze({
      modelPath: params.modelPath,
      images: params.images,
      layers: params.layers,
      settings: params.settings,
      inputSize: params.inputSize,
      trainImages: params.trainImages,
      decoderCacheDir: params.decoderCacheDir,
      boxesFile: params.boxesFile,
      defaultRegion: params.defaultRegion,
      targetClass: params.targetClass,
      reportPath,
      onEvent,
      signal: job.controller.signal,
    });
    send({ kind: 'finished', id, status: 'complete', reportPath });
  } catch (e) {
    if (e instanceof CancelledError) {
      send({ kind: 'finished', id, status: 'cancelled', reportPath });
    } else if (isUserError(e)) {
      send({ kind: 'failed', id, code: 'user', message: firstLine(e.message), reportPath });
    } else {
      const err = e instanceof Error ? e : new Error(String(e));
      send({ kind: 'failed', id, code: 'internal', message: firstLine(err.message) || err.name, detail: err.stack, reportPath });
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
  for (const job of queue.splice(0)) send({ kind: 'finished', id: job.id, status: 'cancelled', reportPath: job.params.reportPath });
  if (!current) process.exit(0);
  current.controller.abort();
  setTimeout(() => process.exit(0), SHUTDOWN_GRACE_MS).unref();
}

function onMessage(message: ToWorker): void {
  switch (message?.kind) {
    case 'analyze':
      if (stopping) return;
      queue.push({ id: message.id, params: message.params, controller: new AbortController() });
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
        send({ kind: 'finished', id: job.id, status: 'cancelled', reportPath: job.params.reportPath });
      }
      return;
    }
    case 'shutdown':
      stop();
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
send({ kind: 'ready', pid: process.pid });
