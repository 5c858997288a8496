/** `infodiscard analyze --workers N|auto`: the layers (and their images) in N worker processes (src/worker/parallel.ts). */
import path from 'node:path';
import { CancelledError, UserError } from '../engine/errors';
import type { AnalysisEvent } from '../engine/events';
import type { Report } from '../engine/report';
import { readReport } from '../engine/reportFile';
import { AnalysisError, AnalysisPool } from '../worker/client';
export { coreCount } from '../worker/client';
import { runLayersInPool } from '../worker/parallel';
import { analyzeParams, type AnalyzeArgs } from './args';

export async function analyzeInWorkers(args: AnalyzeArgs, size: number, onEvent: (e: AnalysisEvent) => void, signal: AbortSignal): Promise<Report> {
  // Workers start lazily, so a pool sized at the core count starts no more than there are jobs to run.
  const pool = new AnalysisPool(path.join(__dirname, 'worker.js'), { size });
  try {
    const result = await runLayersInPool(pool, analyzeParams(args), size, { onEvent, signal }, args.splitSamples ? { splitSamples: args.splitSamples } : {});
    if (result.status === 'cancelled') throw new CancelledError();
    return readReport(args.out);
  } catch (e) {
    if (e instanceof AnalysisError && e.code === 'user') throw new UserError(e.message);
    throw e;
  } finally {
    await pool.dispose();
  }
}
