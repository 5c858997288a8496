/**
 * TensorFlow.js Graph models (model.json with format "graph-model", from tensorflowjs_converter). Every graph node
 * except constants and placeholders can be probed; output shapes come from one forward pass on a blank image.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfc from '@tensorflow/tfjs-converter';
import { UserError } from '../errors';
import { unfuseGraphModel } from '../kernels';
import type { LoadedModel, ModelLoader, ProbeLayer } from './types';
import { outputShapes, type ProbedOutput } from './outputShapes';
import { inputLayoutFromShape, readTfjsArtifacts } from './tfjsArtifacts';
import { graphFeatureHooks, type RunGraphNode } from './graphFeature';
import { graphModelWeights, rescaleGraphConvPair } from './rescale';
import { detectFromGraphSignature } from '../preprocessing/detect';

const NOT_PROBED = new Set(['Const', 'Placeholder', 'PlaceholderWithDefault', 'NoOp']);
const CONTROL_FLOW = new Set(['Enter', 'Exit', 'Merge', 'Switch', 'NextIteration', 'LoopCond', 'While', 'StatelessWhile', 'If', 'StatelessIf']);

interface GraphNode {
  name: string;
  op: string;
  input?: string[];
}

function isGraphJson(json: unknown): boolean {
  if (!json || typeof json !== 'object') return false;
  const j = json as Record<string, unknown>;
  const topo = j.modelTopology as Record<string, unknown> | undefined;
  return j.format === 'graph-model' || (!!topo && Array.isArray(topo.node));
}

export const tfjsGraphLoader: ModelLoader = {
  format: 'tfjs-graph',
  accepts: (file, json) => file.endsWith('.json') && isGraphJson(json),
  async load(file, json): Promise<LoadedModel> {
    const { artifacts, sha256 } = readTfjsArtifacts(file, json as Record<string, unknown>);
    const nodes = ((artifacts.modelTopology as { node?: GraphNode[] }).node ?? []).filter((n) => n && typeof n.name === 'string');
    const control = [...new Set(nodes.filter((n) => CONTROL_FLOW.has(n.op)).map((n) => n.op))];
    if (control.length > 0) {
      throw new UserError(`uses control-flow ops (${control.join(', ')}) that cannot be differentiated in TensorFlow.js; export the model without loops or conditionals`, file);
    }
    // The layers listed are the graph's own nodes (captured above); the graph that runs has its fused ops split,
    // so gradients compute only what the input needs (see kernels/graphUnfuse.ts). Fused nodes keep their names.
    unfuseGraphModel(artifacts.modelTopology);
    const runNodes = ((artifacts.modelTopology as { node?: RunGraphNode[] }).node ?? []).filter((n) => n && typeof n.name === 'string');
    let model: tfc.GraphModel;
    try {
      model = await tfc.loadGraphModel({ load: async () => artifacts });
    } catch (e) {
      throw new UserError(`cannot build the graph (${(e as Error).message.split('\n')[0]}); re-export it with tensorflowjs_converter`, file);
    }
    if (model.inputs.length !== 1) {
      model.dispose();
      throw new UserError(`the model has ${model.inputs.length} inputs; only single-input image models are supported`, file);
    }
    const inputName = model.inputs[0].name;
    // Many converted graphs pin the batch dimension to 1 in their signature; the executor then refuses the batches
    // of noise samples the analysis feeds, so such graphs are run one image at a time.
    const batchOfOne = model.inputs[0].shape?.[0] === 1;
    const inShape = (model.inputs[0].shape ?? []).slice(1).map((d) => (d === -1 || d === undefined ? null : d));
    const input = inputLayoutFromShape(inShape, file);

    // Only nodes whose value depends on the image can be probed (not shape arithmetic on constants).
    const inputs = (n: GraphNode) => (n.input ?? []).filter((i) => !i.startsWith('^')).map((i) => i.replace(/:\d+$/, ''));
    const reached = new Set([inputName]);
    for (let size = 0; size !== reached.size; ) {
      size = reached.size;
      for (const n of nodes) if (inputs(n).some((i) => reached.has(i))) reached.add(n.name);
    }
    const candidates = nodes.filter((n) => !NOT_PROBED.has(n.op) && reached.has(n.name));
    // Shapes of every candidate node from a forward pass (see outputShapes.ts).
    const run = (h: number, w: number) =>
      tf.tidy(() => {
        const zeros = tf.zeros(input.flat ? [1, h * w * input.channels] : [1, h, w, input.channels]);
        const outs = model.execute({ [inputName]: zeros }, candidates.map((n) => n.name));
        return (Array.isArray(outs) ? outs : [outs]).map((t) => ({ shape: t.shape, dtype: t.dtype }));
      });
    let outs: ProbedOutput[];
    try {
      outs = outputShapes(input, run);
    } catch (e) {
      model.dispose();
      const msg = (e as Error).message.split('\n')[0];
      const op =
        /Op(?:eration)? is not (?:yet )?(?:supported|implemented)[^:]*:\s*(\S+)/i.exec(msg) ??
        /Unknown op '([^']+)'/.exec(msg) ??
        /(?:Node type|Custom op) (\S+) is not (?:implemented|registered)/.exec(msg);
      const where = op ? nodes.find((n) => n.op === op[1]) : undefined;
      throw new UserError(
        op ? `unsupported op "${op[1]}"${where ? ` (node "${where.name}")` : ''} in TensorFlow.js; replace it or choose another export` : `cannot run the graph (${msg})`,
        file,
      );
    }
    // Integer or string outputs (shape computations, argmax ...) have no gradient w.r.t. the image.
    const keep = outs.map((o) => o.dtype === 'float32');
    const kept = new Set(candidates.filter((_, i) => keep[i]).map((n) => n.name));
    const layers: ProbeLayer[] = candidates
      .map((n, i) => ({
        name: n.name,
        kind: n.op,
        outputShape: outs[i].shape,
        inputs: inputs(n).filter((name) => kept.has(name)),
      }))
      .filter((_, i) => keep[i]);

    // What the signature and the first ops say about the pixels the model takes.
    const scalarOf = (name: string): number | null => {
      const t = model.weights[name.replace(/:\d+$/, '')]?.[0];
      return t && t.size === 1 ? (t.dataSync()[0] as number) : null;
    };
    const hint = detectFromGraphSignature({
      inputName,
      dtype: String(model.inputs[0].dtype ?? 'float32'),
      consumers: nodes
        .filter((n) => inputs(n).includes(inputName))
        .map((n) => ({ name: n.name, op: n.op, scalar: inputs(n).filter((i) => i !== inputName).map(scalarOf).find((v) => v !== null) ?? null })),
    });
    return {
      path: file,
      format: 'tfjs-graph',
      sha256,
      input,
      layers,
      ...(hint ? { preprocessingHint: hint } : {}),
      probe(layerName) {
        return (x: tf.Tensor4D) => {
          const fed = input.flat ? tf.reshape(x, [x.shape[0], -1]) : x;
          if (!batchOfOne || fed.shape[0] === 1) return model.execute({ [inputName]: fed }, layerName) as tf.Tensor;
          return tf.concat(tf.split(fed, fed.shape[0]).map((one) => model.execute({ [inputName]: one }, layerName) as tf.Tensor));
        };
      },
      // `nodes` are the graph as saved (fused nodes intact); the unfused graph that runs reads the same weights.
      rescaleConvPair: (first, factor) =>
        rescaleGraphConvPair(nodes, graphModelWeights(model), model.outputs.map((o) => o.name), file, first, factor),
      ...graphFeatureHooks({ model, nodes: runNodes, inputName, input, batchOfOne }),
      dispose() {
        model.dispose();
      },
    };
  },
};
