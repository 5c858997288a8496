/** Progress events the engine emits while it analyses; the CLI draws a bar from them, the worker forwards them. */
import type { LayerResult, Report } from './report';

export type AnalysisEvent =
  | { type: 'started'; layers: string[]; images: number; backend: string }
  | { type: 'layerStarted'; layer: string; index: number; total: number }
  | { type: 'step'; layer: string; image: number; step: number; maxSteps: number; ratio: number; entropy: number; elapsedMs: number }
  | { type: 'layerDone'; layer: string; index: number; total: number; result: LayerResult }
  | { type: 'done'; report: Report };

export type EventSink = (event: AnalysisEvent) => void;
