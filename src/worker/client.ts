/**
 * Runs analyses in forked worker processes (dist/worker.js), so that an analysis that runs out of memory or
 * hangs costs a worker, never the extension host. Plain Node (no vscode import) so it can be tested directly.
 *
 * Up to `size` workers are started lazily and kept for reuse (starting one and initialising the backend costs
 * about a second); requests beyond that wait in a FIFO queue. Each worker runs one request at a time (an analysis,
 * a coherency check or a layer listing), and its messages are routed by request id, so concurrent requests never
 * see each other's events.
 *
 * One GPU job at a time per device: the first worker given a request that may use WebGPU (backend `auto` or
 * `webgpu`) holds the GPU for as long as it lives; every other worker is told `gpu: false` and runs such requests on
 * wasm. So an analysis split into jobs runs on the GPU worker and the wasm workers together (src/worker/parallel.ts);
 * seeds follow the layer and the image, so the report does not depend on which worker ran what.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import { createInterface } from 'node:readline';
import type { AnalysisEvent } from '../engine/events';
import {
  isFromWorker,
  type AnalyzeParams,
  type CoherencyOutcome,
  type CoherencyParams,
  type CoherencyPhase,
  type CoherencyRun,
  type FromWorker,
  type LayersParams,
  type ModelLayers,
  type PreprocessingOutcome,
  type PreprocessingParams,
  type ToWorker,
} from '../protocol';
import { addMemberProcesses, memberReportPath, TeamReducer } from './team';

/** One worker per core: the default pool size of the CLI and the extension. */
export function coreCount(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export type AnalysisErrorCode = 'user' | 'internal' | 'crashed';

export class AnalysisError extends Error {
  constructor(
    readonly code: AnalysisErrorCode,
    message: string,
    /** The report holding the layers finished before the failure, when there is one. */
    readonly reportPath?: string,
    /** A stack trace or similar, for the log. */
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'AnalysisError';
  }
}

export interface RunResult {
  status: 'complete' | 'cancelled';
  reportPath: string;
}

export interface RunHandlers {
  onEvent?: (event: AnalysisEvent) => void;
  /** Abort to cancel: the worker stops at its next optimisation step; the finished layers stay in the report. */
  signal?: AbortSignal;
}

export interface CoherencyHandlers {
  /** Engine events of the two analyses; `run` says which. */
  onEvent?: (event: AnalysisEvent, run: CoherencyRun | undefined) => void;
  /** The check of the rescale, then the original and the rescaled analysis, start. */
  onPhase?: (phase: CoherencyPhase) => void;
  /** Abort to cancel: the worker stops at its next optimisation step and writes nothing. */
  signal?: AbortSignal;
}

export type CoherencyRunResult =
  | { status: 'complete'; resultPath: string; originalReportPath: string; rescaledReportPath: string; outcome: CoherencyOutcome }
  | { status: 'cancelled' };

export type LayersResult = { status: 'complete'; model: ModelLayers } | { status: 'cancelled' };
export type PreprocessingResult = { status: 'complete'; outcome: PreprocessingOutcome } | { status: 'cancelled' };

export interface PoolOptions {
  /** Most workers at once (default 1). */
  size?: number;
  /** Worker output and lifecycle lines. */
  log?: (line: string) => void;
  /** How long a cancelled analysis may take to stop before its worker is killed (default 3000 ms). */
  cancelTimeoutMs?: number;
  /** Idle workers exit after this long (default 5 minutes). */
  idleTimeoutMs?: number;
}

/** The messages that end a request (besides 'failed'). */
type Terminal = Extract<FromWorker, { kind: 'finished' | 'layers' | 'coherencyFinished' | 'preprocessing' }>;

interface Job {
  id: number;
  /** What the worker is sent (carries `id`). */
  request: Extract<ToWorker, { kind: 'analyze' | 'layers' | 'coherency' | 'checkPreprocessing' }>;
  onEvent?: (m: Extract<FromWorker, { kind: 'event' }>) => void;
  onPhase?: (phase: CoherencyPhase) => void;
  /** The caller's result for a terminal message of this request's kind; undefined for another kind. */
  result(m: Terminal): unknown;
  /** The caller's result when the request is cancelled. */
  cancelled: unknown;
  /** A file that keeps partial results when the worker dies (an analysis's report). */
  partialPath?: string;
  resolve: (r: unknown) => void;
  reject: (e: AnalysisError) => void;
  settled: boolean;
  worker?: Worker;
  removeAbortListener?: () => void;
  killTimer?: NodeJS.Timeout;
  /** An analysis run by a team of workers (runTeam): the team's reducer and this job's place in it. */
  team?: { reducer: TeamReducer; member: number };
}

interface Worker {
  child: ChildProcess;
  ready: boolean;
  job?: Job;
  idleTimer?: NodeJS.Timeout;
}

export class AnalysisPool {
  private readonly size: number;
  private readonly log: (line: string) => void;
  private readonly cancelTimeoutMs: number;
  private readonly idleTimeoutMs: number;
  private readonly workers = new Set<Worker>();
  private readonly queue: Job[] = [];
  /** The worker that may use the GPU (see the file comment); undefined until a request could use it. */
  private gpuWorker: Worker | undefined;
  private nextId = 1;
  private disposed = false;

  constructor(private readonly workerPath: string, options: PoolOptions = {}) {
    this.size = Math.max(1, options.size ?? 1);
    this.log = options.log ?? (() => {});
    this.cancelTimeoutMs = options.cancelTimeoutMs ?? 3000;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 5 * 60_000;
  }

  /** The pids of the running worker processes (for tests and the log). */
  get pids(): number[] {
    return [...this.workers].flatMap((w) => (w.child.pid === undefined ? [] : [w.child.pid]));
  }

  run(params: AnalyzeParams, handlers: RunHandlers = {}): Promise<RunResult> {
    const cancelled: RunResult = { status: 'cancelled', reportPath: params.reportPath };
    return this.submit<RunResult>({
      request: (id) => ({ kind: 'analyze', id, params }),
      signal: handlers.signal,
      onEvent: handlers.onEvent && ((m) => handlers.onEvent!(m.event)),
      result: (m) => (m.kind === 'finished' ? { status: m.status, reportPath: m.reportPath } : undefined),
      cancelled,
      partialPath: params.reportPath,
    });
  }

  /**
   * One analysis on a team of `members` workers, each running its share of every layer's noise samples
   * (src/engine/sampleShare.ts); the partial sums meet here (TeamReducer). Member 0's report and events are the
   * analysis's; the others compute the same and their copies are removed. Any member's failure or cancel stops the
   * whole team (the others would wait for its sums), and the run rejects with the first error. The members are
   * queued together, so a team never waits on work queued behind it.
   */
  async runTeam(params: AnalyzeParams, members: number, handlers: RunHandlers = {}): Promise<RunResult> {
    if (members <= 1) return this.run(params, handlers);
    const jobs: Job[] = [];
    const reducer = new TeamReducer(members, (member, round, values) => {
      const job = jobs[member];
      if (job?.worker && !job.settled) this.send(job.worker, { kind: 'reduced', id: job.id, round, values });
    });
    const stop = new AbortController();
    const outer = handlers.signal;
    const onOuterAbort = () => stop.abort();
    if (outer?.aborted) stop.abort();
    else outer?.addEventListener('abort', onOuterAbort, { once: true });
    const cancelled: RunResult = { status: 'cancelled', reportPath: params.reportPath };
    const runs = Array.from({ length: members }, (_, member) =>
      this.submit<RunResult>({
        request: (id) => ({ kind: 'analyze', id, params: { ...params, team: { member, members }, reportPath: memberReportPath(params.reportPath, member) } }),
        signal: stop.signal,
        onEvent: member === 0 && handlers.onEvent ? (m) => handlers.onEvent!(m.event) : undefined,
        result: (m) => (m.kind === 'finished' ? { status: m.status, reportPath: params.reportPath } : undefined),
        cancelled,
        partialPath: member === 0 ? params.reportPath : undefined,
        team: { reducer, member },
        onJob: (job) => (jobs[member] = job),
      }).then(
        (r) => {
          // A member that stopped early (cancelled) leaves the others waiting for its sums: stop them too.
          if (r.status !== 'complete') stop.abort();
          return r;
        },
        (e: unknown) => {
          stop.abort();
          throw e;
        },
      ),
    );
    try {
      const settled = await Promise.allSettled(runs);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        const e = failed.reason;
        throw e instanceof AnalysisError && e.reportPath === undefined && existsSync(params.reportPath) ? new AnalysisError(e.code, e.message, params.reportPath, e.detail) : e;
      }
      const all = settled.map((r) => (r as PromiseFulfilledResult<RunResult>).value);
      if (!all.every((r) => r.status === 'complete')) return cancelled;
      addMemberProcesses(params.reportPath, members);
      return all[0];
    } finally {
      outer?.removeEventListener('abort', onOuterAbort);
      for (let member = 1; member < members; member++) rmSync(memberReportPath(params.reportPath, member), { force: true });
    }
  }

  /** A model's layers, and which conv layers the coherency check can rescale (the model is loaded in a worker). */
  listLayers(params: LayersParams, options: { signal?: AbortSignal } = {}): Promise<LayersResult> {
    return this.submit<LayersResult>({
      request: (id) => ({ kind: 'layers', id, params }),
      signal: options.signal,
      result: (m) => (m.kind !== 'layers' ? undefined : m.status === 'complete' ? { status: 'complete', model: m.model } : { status: 'cancelled' }),
      cancelled: { status: 'cancelled' },
    });
  }

  /** The preprocessing check (and what the model file says about its preprocessing), in a worker. */
  checkPreprocessing(params: PreprocessingParams, options: { signal?: AbortSignal } = {}): Promise<PreprocessingResult> {
    return this.submit<PreprocessingResult>({
      request: (id) => ({ kind: 'checkPreprocessing', id, params }),
      signal: options.signal,
      result: (m) => (m.kind !== 'preprocessing' ? undefined : m.status === 'complete' ? { status: 'complete', outcome: m.outcome } : { status: 'cancelled' }),
      cancelled: { status: 'cancelled' },
    });
  }

  /** The coherency check: both analyses in one worker; on completion the result and both reports are written. */
  runCoherency(params: CoherencyParams, handlers: CoherencyHandlers = {}): Promise<CoherencyRunResult> {
    return this.submit<CoherencyRunResult>({
      request: (id) => ({ kind: 'coherency', id, params }),
      signal: handlers.signal,
      onEvent: handlers.onEvent && ((m) => handlers.onEvent!(m.event, m.run)),
      onPhase: handlers.onPhase,
      result: (m) => {
        if (m.kind !== 'coherencyFinished') return undefined;
        if (m.status === 'cancelled') return { status: 'cancelled' };
        const { resultPath, originalReportPath, rescaledReportPath, outcome } = m;
        return { status: 'complete', resultPath, originalReportPath, rescaledReportPath, outcome };
      },
      cancelled: { status: 'cancelled' },
    });
  }

  private submit<T>(spec: {
    request: (id: number) => Job['request'];
    signal?: AbortSignal;
    onEvent?: Job['onEvent'];
    onPhase?: Job['onPhase'];
    result: (m: Terminal) => T | undefined;
    cancelled: T;
    partialPath?: string;
    team?: Job['team'];
    /** Called with the job once it exists (runTeam addresses its members' jobs). */
    onJob?: (job: Job) => void;
  }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.disposed) return reject(new AnalysisError('internal', 'the analysis service has been shut down'));
      const id = this.nextId++;
      const job: Job = {
        id,
        request: spec.request(id),
        onEvent: spec.onEvent,
        onPhase: spec.onPhase,
        result: spec.result,
        cancelled: spec.cancelled,
        partialPath: spec.partialPath,
        resolve: resolve as (r: unknown) => void,
        reject,
        settled: false,
        ...(spec.team ? { team: spec.team } : {}),
      };
      spec.onJob?.(job);
      const { signal } = spec;
      if (signal?.aborted) return resolve(spec.cancelled);
      if (signal) {
        const onAbort = () => this.cancel(job);
        signal.addEventListener('abort', onAbort, { once: true });
        job.removeAbortListener = () => signal.removeEventListener('abort', onAbort);
      }
      this.queue.push(job);
      this.pump();
    });
  }

  /** Stops every worker; running and queued requests resolve as cancelled. Resolves once every worker has exited. */
  dispose(): Promise<void> {
    this.disposed = true;
    for (const job of this.queue.splice(0)) this.settle(job, { value: job.cancelled });
    const exits = [...this.workers].map((w) => {
      if (w.job) this.settle(w.job, { value: w.job.cancelled });
      return this.stopWorker(w);
    });
    return Promise.all(exits).then(() => undefined);
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.disposed) {
      let worker = [...this.workers].find((w) => !w.job);
      if (!worker) {
        if (this.workers.size >= this.size) return;
        worker = this.spawn();
      }
      const job = this.queue.shift()!;
      clearTimeout(worker.idleTimer);
      worker.job = job;
      job.worker = worker;
      this.assignGpu(worker, job);
      // A worker still starting gets the request on 'ready'.
      if (worker.ready) this.send(worker, job.request);
    }
  }

  /** Sets the request's `gpu` flag for this worker: true for the GPU's holder (claimed here when free), else false. */
  private assignGpu(worker: Worker, job: Job): void {
    const r = job.request;
    // The preprocessing check is a few forward passes: it never claims the GPU.
    if (r.kind === 'checkPreprocessing') return;
    const choice = r.kind === 'layers' ? (r.params.backend ?? 'auto') : r.params.settings.backend;
    if (choice !== 'auto' && choice !== 'webgpu') return;
    if (this.gpuWorker && !this.workers.has(this.gpuWorker)) this.gpuWorker = undefined;
    this.gpuWorker ??= worker;
    const gpu = this.gpuWorker === worker;
    if (r.kind === 'layers') r.params = { ...r.params, gpu };
    else if (r.kind === 'analyze') r.params = { ...r.params, gpu };
    else if (r.kind === 'coherency') r.params = { ...r.params, gpu };
  }

  /** The pid of the worker that holds the GPU (for tests and the log); undefined when none does. */
  get gpuPid(): number | undefined {
    return this.gpuWorker && this.workers.has(this.gpuWorker) ? this.gpuWorker.child.pid : undefined;
  }

  private spawn(): Worker {
    const child = fork(this.workerPath, [], {
      // Inside VS Code process.execPath is Electron; this makes it behave as plain Node.
      execArgv: [],
      // onnxruntime (ONNX models on a CPU backend) takes this process's share of the cores, as wasm takes one each.
      env: { INFODISCARD_NATIVE_THREADS: String(Math.max(1, Math.floor(os.availableParallelism() / this.size))), ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const worker: Worker = { child, ready: false };
    this.workers.add(worker);
    const tag = `worker ${child.pid ?? '?'}`;
    this.log(`${tag}: started`);
    // Read both pipes to the end: an unread pipe fills up and blocks the worker.
    for (const stream of [child.stdout, child.stderr]) {
      if (stream) createInterface({ input: stream }).on('line', (line) => this.log(`${tag}: ${line}`));
    }
    child.on('message', (m) => {
      if (isFromWorker(m)) this.onMessage(worker, m);
    });
    child.on('error', (e) => {
      this.log(`${tag}: ${e.message}`);
      // A process that failed to spawn reports only 'error', never 'exit'.
      if (child.pid === undefined) this.onExit(worker, null, null, e.message);
    });
    child.on('exit', (code, signal) => this.onExit(worker, code, signal));
    return worker;
  }

  private onMessage(worker: Worker, m: FromWorker): void {
    // A worker on its way out (idle, disposed, killed after a cancel) has nothing more to say.
    if (!this.workers.has(worker)) return;
    if (m.kind === 'ready') {
      worker.ready = true;
      if (worker.job) this.send(worker, worker.job.request);
      else this.idle(worker);
      return;
    }
    // Only the request this worker is running now: late messages about a settled one are dropped.
    const job = worker.job;
    if (!job || job.id !== m.id) return;
    if (m.kind === 'event' || m.kind === 'coherencyPhase') {
      try {
        if (m.kind === 'event') job.onEvent?.(m);
        else job.onPhase?.(m.phase);
      } catch (e) {
        this.log(`event handler failed: ${(e as Error).stack ?? e}`);
      }
    } else if (m.kind === 'reduce') {
      if (!job.team) {
        this.log(`worker ${worker.child.pid}: a "reduce" message for a request that has no team`);
        return;
      }
      try {
        job.team.reducer.contribute(job.team.member, m.round, m.values);
      } catch (e) {
        this.log(`worker ${worker.child.pid}: ${(e as Error).message}`);
        this.cancel(job);
      }
    } else if (m.kind === 'failed') {
      if (m.detail) this.log(`analysis ${m.id} failed: ${m.detail}`);
      this.settle(job, new AnalysisError(m.code, m.message, m.reportPath, m.detail));
      this.release(worker);
    } else {
      const value = job.result(m);
      if (value === undefined) {
        this.log(`worker ${worker.child.pid}: unexpected "${m.kind}" message for a ${job.request.kind} request`);
        return;
      }
      this.settle(job, { value });
      this.release(worker);
    }
  }

  private onExit(worker: Worker, code: number | null, signal: NodeJS.Signals | null, error?: string): void {
    const how = error ?? (signal ? `signal ${signal}` : `exit code ${code}`);
    this.log(`worker ${worker.child.pid ?? '?'}: exited (${how})`);
    // Workers we stopped on purpose (idle, dispose, killed after a cancel) were taken out of the set already.
    if (!this.workers.delete(worker)) return;
    clearTimeout(worker.idleTimer);
    const job = worker.job;
    if (job && !job.settled) {
      const reportPath = job.partialPath !== undefined && existsSync(job.partialPath) ? job.partialPath : undefined;
      // SIGKILL is what the OOM killer sends; 134 is V8's abort on a full heap.
      const oom = signal === 'SIGKILL' || code === 134 ? '; out of memory?' : '';
      const kept = reportPath ? `; the finished layers are kept in ${reportPath}` : '';
      this.settle(job, new AnalysisError('crashed', `the analysis process stopped unexpectedly (${how}${oom})${kept}`, reportPath));
    }
    // Queued work gets a fresh worker.
    this.pump();
  }

  private cancel(job: Job): void {
    if (job.settled) return;
    const cancelled = { value: job.cancelled };
    const worker = job.worker;
    if (!worker || !worker.ready) {
      // Not started yet: nothing to stop in a worker.
      const i = this.queue.indexOf(job);
      if (i >= 0) this.queue.splice(i, 1);
      this.settle(job, cancelled);
      if (worker) this.release(worker);
      return;
    }
    this.send(worker, { kind: 'cancel', id: job.id });
    // A worker stuck in one long operation cannot see the cancel: kill it; the report keeps the finished layers.
    job.killTimer = setTimeout(() => {
      this.log(`worker ${worker.child.pid}: did not stop within ${this.cancelTimeoutMs} ms of a cancel; killing it`);
      this.workers.delete(worker);
      worker.child.kill('SIGKILL');
      this.settle(job, cancelled);
      this.pump();
    }, this.cancelTimeoutMs);
  }

  private settle(job: Job, outcome: { value: unknown } | AnalysisError): void {
    if (job.settled) return;
    job.settled = true;
    clearTimeout(job.killTimer);
    job.removeAbortListener?.();
    if (outcome instanceof AnalysisError) job.reject(outcome);
    else job.resolve(outcome.value);
  }

  /** The worker's request is over: give it the next one, or start its idle clock. */
  private release(worker: Worker): void {
    worker.job = undefined;
    this.pump();
    if (!worker.job) this.idle(worker);
  }

  private idle(worker: Worker): void {
    clearTimeout(worker.idleTimer);
    worker.idleTimer = setTimeout(() => {
      if (worker.job || !this.workers.has(worker)) return;
      this.log(`worker ${worker.child.pid}: idle, stopping it`);
      void this.stopWorker(worker);
    }, this.idleTimeoutMs);
    // An idle worker must not keep a CLI or test process alive.
    worker.idleTimer.unref();
  }

  /** Asks the worker to shut down (it marks a running report cancelled), kills it if it lingers. */
  private stopWorker(worker: Worker): Promise<void> {
    const { child } = worker;
    clearTimeout(worker.idleTimer);
    // Out of the set first, so no new analysis is given to a worker on its way out.
    this.workers.delete(worker);
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const kill = setTimeout(() => child.kill('SIGKILL'), 1000);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      this.send(worker, { kind: 'shutdown' });
    });
  }

  private send(worker: Worker, message: ToWorker): void {
    if (!worker.child.connected) return;
    // Errors here mean the worker is gone; its 'exit' handler settles the analysis.
    worker.child.send(message, (e) => {
      if (e) this.log(`worker ${worker.child.pid}: send failed: ${e.message}`);
    });
  }
}
