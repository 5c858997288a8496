/** Progress events the engine emits while it analyses; the CLI draws a bar from them, the worker forwards them. */
import type { LayerResult, Report } from './report';

export type AnalysisEvent =
  /** `reused`: layers taken over from the earlier report at the same output (resume), announced by a layerDone each. */
  | { type: 'started'; layers: string[]; images: number; backend: string; reused?: string[] }
  | { type: 'layerStarted'; layer: string; index: number; total: number }
  /** One optimisation step of SID or (metric 'ru') of RU; absent metric means SID (schema-1 producers). */
  | { type: 'step'; layer: string; image: number; step: number; maxSteps: number; ratio: number; entropy: number; elapsedMs: number; metric?: 'sid' | 'ru' }
  /** What the layer's analysis is doing now (the CLI and the panel show it). */
  | { type: 'phase'; layer: string; phase: 'sid' | 'decoder' | 'ru' | 'baselines'; detail?: string }
  /** One epoch of the layer's RU decoder training (loss: mean squared error in [0,1] pixels). */
  | { type: 'decoderEpoch'; layer: string; epoch: number; maxEpochs: number; trainLoss: number; heldOutLoss: number }
  /** Something the user should know that does not stop the analysis (a poor decoder, an unmatched box). */
  | { type: 'warning'; layer?: string; message: string }
  | { type: 'layerDone'; layer: string; index: number; total: number; result: LayerResult }
  /** The layer cannot be analysed (delta_f^2 = 0, not differentiable): recorded in report.skippedLayers, the run goes on. */
  | { type: 'layerSkipped'; layer: string; index: number; total: number; reason: string }
  | { type: 'done'; report: Report };

export type EventSink = (event: AnalysisEvent) => void;
