/**
 * Keras models saved by Python Keras, read without Python:
 *  - Keras 2 HDF5 (.h5, .hdf5, from model.save('m.h5')): the root attribute `model_config` holds the model JSON and
 *    `model_weights/<layer>/<weight names>` the weights, in the order of the attributes `layer_names`/`weight_names`.
 *  - Keras 3 (.keras, also Keras 2.13+ "v3" saving): a zip with config.json, metadata.json and model.weights.h5
 *    (weights under `layers/<layer>/vars/<i>` or `_layer_checkpoint_dependencies/<layer>/vars/<i>`).
 * The config is turned into what tfjs-layers deserialises (Keras 3 fields mapped to Keras 2 ones), the model is built
 * with tfjs-layers and each layer's weights are set in the file's order, as Keras' own loader does.
 * HDF5 is read with h5wasm (the HDF5 C library compiled to wasm; the node build reads host files directly).
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { UserError } from '../errors';
import { wrapLayersModel } from './tfjsLayers';
import { KERAS_IDENTITY, KerasMultiHeadAttention, KNOWN_MISSING } from './kerasLayers';
import { findKerasJsonFor, findKerasWeights, isKerasToJson, kerasPairFiles, weightCandidates } from '../kerasFiles';
import type { LoadedModel, ModelLoader } from './types';

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------------------------
// h5wasm, loaded lazily (an ES module with top-level await: imported at run time, never bundled or required)

interface H5Attr {
  value: unknown;
}
interface H5Entity {
  attrs: Record<string, H5Attr>;
  type?: string;
}
interface H5Group extends H5Entity {
  keys(): string[];
  get(name: string): H5Group | H5Dataset | null;
}
interface H5Dataset extends H5Entity {
  shape: number[] | null;
  dtype: unknown;
  value: unknown;
}
interface H5File extends H5Group {
  file_id: bigint | number;
  close(): unknown;
}
interface H5Module {
  ready: Promise<unknown>;
  File: new (file: string, mode: string) => H5File;
  Dataset: new (...args: never[]) => H5Dataset;
  Group: new (...args: never[]) => H5Group;
}

let h5Promise: Promise<H5Module> | undefined;

async function h5(): Promise<H5Module> {
  if (!h5Promise) {
    h5Promise = (async () => {
      // A non-literal specifier keeps bundlers from inlining this ES module into the CommonJS bundle.
      const spec = 'h5wasm/node';
      // Emscripten mistakes a runtime with `navigator` (Electron, newer Node) for a browser: hide it while starting.
      const nav = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
      if (nav?.configurable) Object.defineProperty(globalThis, 'navigator', { value: undefined, configurable: true });
      try {
        const m = (await import(spec)) as H5Module & { default?: H5Module };
        await m.ready;
        return m;
      } finally {
        if (nav?.configurable) Object.defineProperty(globalThis, 'navigator', nav);
      }
    })();
  }
  return h5Promise;
}

/**
 * Runs HDF5 calls with the library's error printing captured (it writes an error stack to fd 2, which would
 * break the one-line error contract). Returns the result and the most specific HDF5 message, if any.
 */
function quietly<T>(fn: () => T): { value?: T; error?: Error; diag: string } {
  const original = fs.writeSync;
  let captured = '';
  (fs as { writeSync: unknown }).writeSync = (fd: number, buf: unknown, ...rest: unknown[]) => {
    if (fd === 2) {
      if (typeof buf === 'string') {
        captured += buf;
        return Buffer.byteLength(buf);
      }
      // fs.writeSync(fd, buffer, offset, length): emscripten passes its whole heap with an offset and a length.
      const b = buf as Uint8Array;
      const offset = (rest[0] as number | undefined) ?? 0;
      const length = (rest[1] as number | undefined) ?? b.length - offset;
      if (captured.length < 100_000) captured += Buffer.from(b.buffer, b.byteOffset + offset, length).toString('utf8');
      return length;
    }
    return (original as (...a: unknown[]) => number)(fd, buf, ...rest);
  };
  // After a wasm abort() emscripten also reports through console.error ("Aborted(...)"): keep that quiet too.
  // (emscripten bound console.error at start-up, so its stream is what can be intercepted).
  const stderrWrite = process.stderr.write;
  process.stderr.write = ((chunk: unknown) => {
    captured += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: fn(), diag: lastDiag(captured) };
  } catch (e) {
    return { error: e as Error, diag: lastDiag(captured) };
  } finally {
    fs.writeSync = original;
    process.stderr.write = stderrWrite;
  }
}

/** The innermost message of an HDF5 error stack: "#006: ... in H5F__super_read(): truncated file: eof = ..." */
function lastDiag(text: string): string {
  const lines = [...text.matchAll(/#\d+: .*? in [^(]+\(\): (.*)/g)].map((m) => m[1].trim());
  return lines.length ? lines[lines.length - 1] : '';
}

const HDF5_MAGIC = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

/** Reads the first bytes of a file (for magic numbers), [] when unreadable. */
function head(file: string, n = 8): Buffer {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const b = Buffer.alloc(n);
      const got = fs.readSync(fd, b, 0, n, 0);
      return b.subarray(0, got);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return Buffer.alloc(0);
  }
}

export function isHdf5(file: string): boolean {
  return head(file).equals(HDF5_MAGIC);
}
export function isZip(file: string): boolean {
  return head(file, 4).equals(ZIP_MAGIC);
}

const CORRUPT = 'the file is truncated or corrupted; copy or download it again';

function openH5(mod: H5Module, file: string, shownAs: string): H5File {
  const r = quietly(() => new mod.File(file, 'r'));
  if (r.error || !r.value || Number(r.value.file_id) < 0) {
    throw new UserError(`cannot open the HDF5 file (${r.diag || r.error?.message || 'unknown error'}); ${CORRUPT}`, shownAs);
  }
  return r.value;
}

/** Any HDF5 read on a damaged file: a one-line UserError naming the file. */
function read<T>(fn: () => T, what: string, shownAs: string): T {
  const r = quietly(fn);
  if (r.error) throw new UserError(`cannot read ${what} (${r.diag || r.error.message}); ${CORRUPT}`, shownAs);
  return r.value as T;
}

function attrString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('utf8');
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return v[0];
  return undefined;
}

function attrStrings(v: unknown): string[] {
  if (v == null) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : x instanceof Uint8Array ? Buffer.from(x).toString('utf8') : String(x)));
  return []; // an empty attribute comes back as an empty numeric array
}

function datasetToFloat32(ds: H5Dataset, what: string, shownAs: string): { data: Float32Array; shape: number[] } {
  return read(
    () => {
      const v = ds.value;
      const shape = ds.shape ?? [];
      if (v instanceof Float32Array) return { data: v, shape };
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return { data: Float32Array.from(v as unknown as ArrayLike<number>, Number), shape };
      if (typeof v === 'number' || typeof v === 'bigint') return { data: Float32Array.of(Number(v)), shape }; // a scalar (an int64 count)
      throw new Error(`weight ${what} is not numeric`);
    },
    `weight "${what}"`,
    shownAs,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Config: Keras 2 / Keras 3 JSON -> the Keras 2 form tfjs-layers deserialises

function isObj(v: unknown): v is Json {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

/** Strips Keras 3 serialisation fields and turns dtype policy objects into dtype strings, recursively. */
function stripKeras3(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripKeras3);
  if (!isObj(v)) return v;
  if (typeof v.class_name === 'string' && /DTypePolicy$/.test(v.class_name) && isObj(v.config)) {
    const name = String(v.config.name ?? 'float32');
    return name.startsWith('mixed_') ? 'float32' : name;
  }
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'module' || k === 'registered_name' || k === 'build_config' || k === 'compile_config') continue;
    out[k] = stripKeras3(x);
  }
  return out;
}

/** Keras 3 tensor references ({class_name: "__keras_tensor__", config: {keras_history}}) found in call args. */
function kerasTensors(v: unknown, out: unknown[][]): unknown[][] {
  if (Array.isArray(v)) for (const x of v) kerasTensors(x, out);
  else if (isObj(v)) {
    if (v.class_name === '__keras_tensor__' && isObj(v.config) && Array.isArray(v.config.keras_history)) {
      const [name, node, index] = v.config.keras_history as [string, number, number];
      out.push([name, node, index, {}]);
    }
  }
  return out;
}

function tensorRefs(v: unknown): unknown {
  // Keras 3 writes a single input/output as [name, 0, 0]; Keras 2 and tfjs want [[name, 0, 0]].
  if (Array.isArray(v) && typeof v[0] === 'string') return [v];
  return v;
}

function normalizeLayerList(layers: unknown[], sequential: boolean, buildInputShape: unknown): unknown[] {
  const out = layers.map((l) => {
    if (!isObj(l)) return l;
    const layer: Json = { ...l };
    const cfg: Json = isObj(layer.config) ? { ...layer.config } : {};
    if (cfg.batch_shape !== undefined && cfg.batch_input_shape === undefined) {
      cfg.batch_input_shape = cfg.batch_shape;
      delete cfg.batch_shape;
    }
    if (layer.class_name === 'InputLayer') {
      delete cfg.optional;
      delete cfg.ragged;
    }
    // Keras' Identity layer shares its name with tfjs' Identity initializer (kerasLayers.ts).
    if (layer.class_name === 'Identity') layer.class_name = KERAS_IDENTITY;
    if (typeof layer.class_name === 'string' && isNestedModel(layer.class_name)) {
      layer.config = normalizeModelConfig(layer.class_name, cfg).config;
    } else layer.config = cfg;
    // Keras 3 functional call records -> Keras 2 inbound node lists
    if (Array.isArray(layer.inbound_nodes)) {
      layer.inbound_nodes = layer.inbound_nodes.map((node) =>
        isObj(node) && ('args' in node || 'kwargs' in node) ? kerasTensors(node.args, []).slice(0, layer.class_name === 'MultiHeadAttention' ? 2 : undefined) : node,
      );
      // Keras 2 records mha(query, value) as one inbound tensor with value in its kwargs: make it two inputs.
      if (layer.class_name === 'MultiHeadAttention') {
        layer.inbound_nodes = (layer.inbound_nodes as unknown[]).map((node) => {
          if (!Array.isArray(node) || node.length !== 1 || !Array.isArray(node[0])) return node;
          const [name, n, t, kwargs] = node[0] as [string, number, number, unknown];
          const value = isObj(kwargs) && Array.isArray(kwargs.value) ? (kwargs.value as unknown[]) : undefined;
          return value ? [[name, n, t, {}], [value[0], value[1], value[2], {}]] : node;
        });
      }
    }
    return layer;
  });
  if (sequential && out.length > 0 && isObj(out[0])) {
    // tfjs Sequential takes its input shape from the first real layer, not from an InputLayer entry.
    let first = out[0] as Json;
    if (first.class_name === 'InputLayer') {
      const inputCfg = first.config as Json;
      out.shift();
      first = out[0] as Json;
      if (first && isObj(first.config) && first.config.batch_input_shape === undefined) {
        first.config = { ...first.config, batch_input_shape: inputCfg.batch_input_shape, dtype: inputCfg.dtype ?? 'float32' };
      }
    }
    if (first && isObj(first.config) && first.config.batch_input_shape === undefined && Array.isArray(buildInputShape)) {
      first.config = { ...first.config, batch_input_shape: buildInputShape };
    }
  }
  return out;
}

function isNestedModel(cls: string): boolean {
  return cls === 'Sequential' || cls === 'Functional' || cls === 'Model';
}

/** Keras 2 or 3 model JSON ({class_name, config}) -> the Keras 2 form tfjs-layers understands. */
export function normalizeModelConfig(className: string, rawConfig: unknown): { class_name: string; config: unknown } {
  const config = stripKeras3(rawConfig);
  const cls = className === 'Functional' ? 'Model' : className;
  if (Array.isArray(config)) {
    // Keras < 2.2.3 Sequential: config is the layer list itself
    return { class_name: cls, config: { name: 'sequential', layers: normalizeLayerList(config, true, undefined) } };
  }
  if (!isObj(config)) return { class_name: cls, config };
  const c: Json = { ...config };
  const build = isObj(rawConfig) && isObj(rawConfig.build_config) ? (rawConfig.build_config as Json).input_shape : undefined;
  if (Array.isArray(c.layers)) c.layers = normalizeLayerList(c.layers, cls === 'Sequential', c.build_input_shape ?? build);
  if ('input_layers' in c) c.input_layers = tensorRefs(c.input_layers);
  if ('output_layers' in c) c.output_layers = tensorRefs(c.output_layers);
  return { class_name: cls, config: c };
}

/** Every layer class in a model config (nested models included). */
function layerClasses(config: unknown, out = new Set<string>()): Set<string> {
  if (!isObj(config) || !Array.isArray(config.layers)) return out;
  for (const l of config.layers) {
    if (!isObj(l) || typeof l.class_name !== 'string') continue;
    if (isNestedModel(l.class_name)) layerClasses(l.config, out);
    else out.add(l.class_name);
  }
  return out;
}

/** Every layer entry in a model config (nested models' layers included). */
function layerConfigs(config: unknown, out: Json[] = []): Json[] {
  if (!isObj(config) || !Array.isArray(config.layers)) return out;
  for (const l of config.layers) {
    if (!isObj(l) || typeof l.class_name !== 'string') continue;
    if (isNestedModel(l.class_name)) layerConfigs(l.config, out);
    else out.push(l);
  }
  return out;
}

/** A tensor reference's layer name: Keras 3 {__keras_tensor__ …} or Keras 2 [name, node, index]. */
function refName(v: unknown): string | undefined {
  if (isObj(v) && v.class_name === '__keras_tensor__' && isObj(v.config) && Array.isArray(v.config.keras_history)) return String(v.config.keras_history[0]);
  if (Array.isArray(v) && typeof v[0] === 'string') return v[0];
  return undefined;
}

/**
 * What MultiHeadAttention is asked to do that kerasLayers.ts does not (a mask, a causal mask, attention scores
 * returned, a key other than the value), from the raw call records; undefined when nothing.
 */
function mhaProblem(config: unknown): string | undefined {
  const layers = isObj(config) && Array.isArray(config.layers) ? config.layers : Array.isArray(config) ? config : [];
  for (const l of layers) {
    if (!isObj(l)) continue;
    if (typeof l.class_name === 'string' && isNestedModel(l.class_name)) {
      const inner = mhaProblem(l.config);
      if (inner) return inner;
      continue;
    }
    if (l.class_name !== 'MultiHeadAttention' || !Array.isArray(l.inbound_nodes)) continue;
    const name = String((isObj(l.config) && l.config.name) ?? l.name);
    for (const node of l.inbound_nodes) {
      const args: unknown[] = isObj(node) && Array.isArray(node.args) ? node.args : [];
      const kwargs: Json = isObj(node) && isObj(node.kwargs) ? node.kwargs : Array.isArray(node) && Array.isArray(node[0]) && isObj(node[0][3]) ? (node[0][3] as Json) : {};
      const value = refName(args[1]) ?? refName(kwargs.value);
      const key = refName(args[2]) ?? refName(kwargs.key);
      if (key !== undefined && key !== value) return `MultiHeadAttention "${name}" is given a key other than its value, which infodiscard does not implement`;
      for (const k of ['attention_mask', 'query_mask', 'value_mask', 'key_mask']) {
        if (kwargs[k] != null) return `MultiHeadAttention "${name}" is called with ${k}, which infodiscard does not implement`;
      }
      if (kwargs.use_causal_mask === true) return `MultiHeadAttention "${name}" uses a causal mask, which infodiscard does not implement`;
      if (kwargs.return_attention_scores === true) return `MultiHeadAttention "${name}" returns its attention scores, which infodiscard does not implement`;
    }
  }
  return undefined;
}

function unknownClasses(config: unknown): string[] {
  const known = tf.serialization.SerializationMap.getMap().classNameMap;
  return [...layerClasses(config)].filter((c) => !(c in known));
}

function describeBuildError(e: Error): string {
  const m = e.message;
  const unknown = /Unknown (layer|activation|initializer|regularizer|constraint)s?: ([^\s.]+)/.exec(m);
  if (unknown) {
    return unknown[1] === 'layer'
      ? `unsupported Keras layer "${unknown[2]}" (not implemented in TensorFlow.js)`
      : `unsupported Keras ${unknown[1]} "${unknown[2]}" (not implemented in TensorFlow.js)`;
  }
  return `cannot build the Keras model in TensorFlow.js (${m.split('\n')[0]})`;
}

async function buildModel(modelConfig: Json, kerasVersion: string | undefined, shownAs: string): Promise<tfl.LayersModel> {
  if (typeof modelConfig.class_name !== 'string') {
    throw new UserError('the Keras model config has no "class_name"; save the model with Keras model.save()', shownAs);
  }
  const topo = normalizeModelConfig(modelConfig.class_name, modelConfig.config);
  if (!isNestedModel(topo.class_name)) {
    throw new UserError(`the Keras model is a "${modelConfig.class_name}"; only Sequential and Functional models can be loaded (subclassed models keep no layer graph)`, shownAs);
  }
  const unknown = unknownClasses(topo.config);
  if (unknown.length) {
    const list = unknown.map((c) => (KNOWN_MISSING[c] ? `"${c}" (${KNOWN_MISSING[c]})` : `"${c}"`)).join(', ');
    throw new UserError(`unsupported Keras layer${unknown.length > 1 ? 's' : ''} ${list} (not implemented in TensorFlow.js); analyse a model without ${unknown.length > 1 ? 'them' : 'it'}, or export it to ONNX (tf2onnx) and analyse the .onnx`, shownAs);
  }
  const mha = mhaProblem(modelConfig.config);
  if (mha) throw new UserError(`unsupported Keras layer call: ${mha}`, shownAs);
  const rms = layerConfigs(topo.config).find((l) => l.class_name === 'LayerNormalization' && isObj(l.config) && l.config.rms_scaling === true);
  if (rms) throw new UserError(`unsupported Keras layer option: LayerNormalization "${String((rms.config as Json).name)}" uses rms_scaling=True, which TensorFlow.js does not implement`, shownAs);
  try {
    return await tfl.models.modelFromJSON({
      modelTopology: { ...topo, keras_version: kerasVersion ?? 'unknown', backend: 'tensorflow' },
    } as unknown as tfl.ModelAndWeightsConfig);
  } catch (e) {
    throw new UserError(describeBuildError(e as Error), shownAs);
  }
}

/** Sets one layer's weights (in the file's order), checking count and shapes. */
function setLayerWeights(model: tfl.LayersModel, layerName: string, values: { data: Float32Array; shape: number[] }[], shownAs: string) {
  let layer: tfl.layers.Layer;
  try {
    layer = model.getLayer(layerName);
  } catch {
    throw new UserError(`the weights name a layer "${layerName}" that the model config does not have; the file is inconsistent, save the model again`, shownAs);
  }
  const expected = layer.weights;
  if (expected.length !== values.length) {
    throw new UserError(`layer "${layerName}" needs ${expected.length} weight arrays, the file has ${values.length}; the file is inconsistent, save the model again`, shownAs);
  }
  const tensors = values.map((v, i) => {
    const want = expected[i].shape.map((d) => d ?? -1);
    const n = want.reduce((a, b) => a * b, 1);
    if (v.data.length !== n || (v.shape.length && v.shape.join('x') !== want.join('x'))) {
      throw new UserError(`weight ${i} of layer "${layerName}" has shape [${v.shape}], the layer needs [${want}]; the file is inconsistent, save the model again`, shownAs);
    }
    return tf.tensor(v.data, want, 'float32');
  });
  layer.setWeights(tensors);
  tf.dispose(tensors);
}

function checkAllWeightsSet(model: tfl.LayersModel, done: Set<string>, shownAs: string) {
  const missing = model.layers.filter((l) => l.weights.length > 0 && !done.has(l.name)).map((l) => l.name);
  if (missing.length) {
    throw new UserError(`no weights in the file for layer${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')}; save the whole model (with weights) again`, shownAs);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Keras 2 HDF5

function parseJsonAttr(text: string | undefined, what: string, shownAs: string): Json {
  try {
    const v = JSON.parse(text ?? '') as unknown;
    if (!isObj(v)) throw new Error('not an object');
    return v;
  } catch (e) {
    throw new UserError(`the ${what} is not valid JSON (${(e as Error).message}); ${CORRUPT}`, shownAs);
  }
}

/** Sets the weights of a Keras 2 HDF5 (a whole model's "model_weights" group, or a save_weights file's root). */
function setKeras2Weights(model: tfl.LayersModel, f: H5File, file: string): void {
  const group = read(() => {
    const g = f.keys().includes('model_weights') ? f.get('model_weights') : f;
    return g as H5Group | null;
  }, 'the weights group', file);
  if (!group || !Object.keys(group.attrs).includes('layer_names')) {
    throw new UserError('has a model config but no weights ("model_weights" group with "layer_names"); save the model with its weights', file);
  }
  const layerNames = read(() => attrStrings(group.attrs.layer_names.value), 'the layer names', file);
  const done = new Set<string>();
  for (const layerName of layerNames) {
    const lg = read(() => group.get(layerName) as H5Group | null, `the weights of layer "${layerName}"`, file);
    if (!lg) throw new UserError(`the weights of layer "${layerName}" are missing; ${CORRUPT}`, file);
    const weightNames = read(() => (Object.keys(lg.attrs).includes('weight_names') ? attrStrings(lg.attrs.weight_names.value) : []), `the weight names of layer "${layerName}"`, file);
    if (weightNames.length === 0) continue;
    const values = weightNames.map((wn) => {
      const ds = read(() => lg.get(wn) as H5Dataset | null, `weight "${wn}"`, file);
      if (!ds || ds.shape === undefined) throw new UserError(`weight "${wn}" is missing; ${CORRUPT}`, file);
      return datasetToFloat32(ds, wn, file);
    });
    setLayerWeights(model, layerName, values, file);
    done.add(layerName);
  }
  checkAllWeightsSet(model, done, file);
}

/** Sets the weights of a Keras 3 weights file (`layers/<layer>/vars/<i>`), as in a .keras zip's model.weights.h5. */
function setKeras3Weights(model: tfl.LayersModel, f: H5File, file: string): void {
  const done = new Set<string>();
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    // MultiHeadAttention keeps its weights in sub-layers: <layer>/query_dense/vars, key_dense, value_dense, output_dense.
    const subs = layer instanceof KerasMultiHeadAttention ? KerasMultiHeadAttention.KERAS3_SUBLAYERS : [undefined];
    const values: { data: Float32Array; shape: number[] }[] = [];
    let missing = false;
    for (const sub of subs) {
      const where = sub ? `${layer.name}/${sub}` : layer.name;
      const vars = read(() => findVarsGroup(f, layer.name, sub), `the weights of layer "${where}"`, file);
      if (!vars) {
        missing = true;
        break;
      }
      const names = read(() => vars.keys(), `the weights of layer "${where}"`, file).sort((a, b) => Number(a) - Number(b));
      for (const n of names) {
        const ds = read(() => vars.get(n) as H5Dataset | null, `weight ${where}/vars/${n}`, file);
        if (!ds) throw new UserError(`weight ${where}/vars/${n} is missing; ${CORRUPT}`, file);
        values.push(datasetToFloat32(ds, `${where}/vars/${n}`, file));
      }
    }
    if (missing) continue; // reported below with every other missing layer
    setLayerWeights(model, layer.name, values, file);
    done.add(layer.name);
  }
  checkAllWeightsSet(model, done, file);
}

function isKeras3WeightsFile(f: H5File): boolean {
  const r = quietly(() => f.keys());
  return !!r.value && (r.value.includes('layers') || r.value.includes('_layer_checkpoint_dependencies'));
}

/**
 * A Keras to_json file (`model.to_json()`) with the weights saved by `model.save_weights()`: Keras 2 HDF5
 * (`layer_names` at the root) or Keras 3 `.weights.h5` (`layers/<name>/vars`). `weightsPath` defaults to the
 * same-stem .weights.h5 / .h5 beside the JSON; without one, a UserError asks for it.
 */
export async function loadKerasJsonModel(jsonPath: string, weightsPath?: string): Promise<tfl.LayersModel> {
  let text: string;
  try {
    text = fs.readFileSync(jsonPath, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, jsonPath);
  }
  const config = parseJsonAttr(text, 'Keras model JSON', jsonPath);
  const weights = weightsPath ?? findKerasWeights(jsonPath);
  if (!weights) {
    const names = weightCandidates(jsonPath).slice(0, 2).map((f) => path.basename(f)).join(' or ');
    throw new UserError(`is a Keras architecture (model.to_json()) without weights: save them with model.save_weights() as ${names} beside it, or give the weights file (--weights file.h5)`, jsonPath);
  }
  if (!fs.existsSync(weights)) throw new UserError('no such weights file; give the file saved with model.save_weights()', weights);
  if (!isHdf5(weights)) throw new UserError(`is not an HDF5 weights file (no HDF5 signature); give the file saved with model.save_weights("…h5")`, weights);
  const model = await buildModel(config, typeof config.keras_version === 'string' ? config.keras_version : undefined, jsonPath);
  try {
    const mod = await h5();
    const f = openH5(mod, weights, weights);
    try {
      const attrNames = read(() => Object.keys(f.attrs), 'the root attributes', weights);
      if (attrNames.includes('layer_names') || read(() => f.keys().includes('model_weights'), 'the groups', weights)) setKeras2Weights(model, f, weights);
      else if (isKeras3WeightsFile(f)) setKeras3Weights(model, f, weights);
      else throw new UserError('is an HDF5 file without Keras weights (no "layer_names" attribute, no "layers" group); give the file saved with model.save_weights()', weights);
    } finally {
      quietly(() => f.close());
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Loads a Keras 2 HDF5 model file into a tfjs LayersModel with its weights. */
export async function loadKerasH5Model(file: string): Promise<tfl.LayersModel> {
  const mod = await h5();
  const f = openH5(mod, file, file);
  try {
    const attrNames = read(() => Object.keys(f.attrs), 'the root attributes', file);
    if (!attrNames.includes('model_config')) {
      if (attrNames.includes('layer_names') || isKeras3WeightsFile(f)) {
        const json = findKerasJsonFor(file);
        if (json) {
          quietly(() => f.close());
          return loadKerasJsonModel(json, file);
        }
        throw new UserError(`holds only weights (saved with save_weights), not a model: put the architecture saved with model.to_json() beside it as ${path.basename(file).replace(/(\.weights)?\.(h5|hdf5)$/i, '')}.json, or save the whole model with Keras model.save("model.h5")`, file);
      }
      throw new UserError('is an HDF5 file but not a Keras model (no "model_config" attribute); save the model with Keras model.save("model.h5")', file);
    }
    const configText = read(() => attrString(f.attrs.model_config.value), 'the model config', file);
    const config = parseJsonAttr(configText, 'model config', file);
    const kerasVersion = read(() => (attrNames.includes('keras_version') ? attrString(f.attrs.keras_version.value) : undefined), 'the Keras version', file);
    const model = await buildModel(config, kerasVersion, file);
    try {
      setKeras2Weights(model, f, file);
      return model;
    } catch (e) {
      model.dispose();
      throw e;
    }
  } finally {
    quietly(() => f.close());
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Keras 3 .keras (zip)

/** The entries of a zip file (stored or deflated; no zip64), read from its central directory. */
export function readZip(buf: Buffer, shownAs: string): Map<string, Buffer> {
  const bad = (why: string) => new UserError(`is not a readable .keras zip (${why}); ${CORRUPT}`, shownAs);
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 0xffff); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw bad('no end of central directory');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let n = 0; n < count; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw bad('bad central directory');
    const method = buf.readUInt16LE(p + 10);
    const compSize = buf.readUInt32LE(p + 20);
    const size = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (compSize === 0xffffffff || local === 0xffffffff) throw bad('zip64 archives are not supported');
    if (local + 30 > buf.length || buf.readUInt32LE(local) !== 0x04034b50) throw bad(`bad local header for ${name}`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (start + compSize > buf.length) throw bad(`${name} is cut short`);
    const raw = buf.subarray(start, start + compSize);
    let data: Buffer;
    if (method === 0) data = raw;
    else if (method === 8) {
      try {
        data = inflateRawSync(raw);
      } catch (e) {
        throw bad(`${name}: ${(e as Error).message}`);
      }
    } else throw bad(`${name} uses compression method ${method}`);
    if (data.length !== size) throw bad(`${name} has ${data.length} bytes, expected ${size}`);
    out.set(name, data);
  }
  return out;
}

/** Finds a layer's variables in a Keras 3 weights file: the `vars` group under the layer's path. */
function findVarsGroup(root: H5Group, layerName: string, sub?: string): H5Group | null {
  for (const prefix of ['layers', '_layer_checkpoint_dependencies']) {
    const keys = root.keys();
    if (!keys.includes(prefix)) continue;
    const container = root.get(prefix) as H5Group;
    if (!container.keys().includes(layerName)) continue;
    let lg = container.get(layerName) as H5Group;
    if (sub) {
      const name = lg.keys().find((k) => k === sub || k === `_${sub}`);
      if (!name) continue;
      lg = lg.get(name) as H5Group;
    }
    if (lg.keys().includes('vars')) return lg.get('vars') as H5Group;
  }
  return null;
}

export async function loadKerasV3Model(file: string): Promise<tfl.LayersModel> {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new UserError(`cannot read model (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, file);
  }
  const entries = readZip(buf, file);
  const configBytes = entries.get('config.json');
  const weightBytes = entries.get('model.weights.h5');
  if (!configBytes || !weightBytes) {
    throw new UserError(`is a zip but not a Keras 3 .keras model (needs config.json and model.weights.h5; has ${[...entries.keys()].slice(0, 5).join(', ') || 'nothing'})`, file);
  }
  const config = parseJsonAttr(configBytes.toString('utf8'), 'config.json', file);
  let kerasVersion: string | undefined;
  const meta = entries.get('metadata.json');
  if (meta) {
    try {
      kerasVersion = (JSON.parse(meta.toString('utf8')) as Json).keras_version as string | undefined;
    } catch {
      /* metadata is informative only */
    }
  }
  const model = await buildModel(config, kerasVersion, file);
  // The node build of h5wasm reads host files: the weights go to a private temp file for the duration.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'infodiscard-keras-'));
  const h5file = path.join(tmp, 'model.weights.h5');
  try {
    fs.writeFileSync(h5file, weightBytes);
    const mod = await h5();
    const f = openH5(mod, h5file, file);
    try {
      setKeras3Weights(model, f, file);
    } finally {
      quietly(() => f.close());
    }
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Loaders

function sha256Of(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

const H5_EXT = /\.(h5|hdf5|he5|keras)$/i;

/** The sha256 of a model made of several files (a to_json file and its weights), as modelHash.ts computes it. */
function sha256OfFiles(files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(fs.readFileSync(f));
  return h.digest('hex');
}

export const kerasJsonLoader: ModelLoader = {
  format: 'keras-json',
  accepts: (file, json) => file.toLowerCase().endsWith('.json') && isKerasToJson(json),
  async load(file, _json, options): Promise<LoadedModel> {
    const weights = options?.weights ?? findKerasWeights(file);
    const model = await loadKerasJsonModel(file, weights);
    return wrapLayersModel(model, file, 'keras-json', sha256OfFiles(weights ? [file, weights] : [file]));
  },
};

export const kerasH5Loader: ModelLoader = {
  format: 'keras-h5',
  accepts: (file) => (/\.(h5|hdf5|he5)$/i.test(file) && !isZip(file)) || (!H5_EXT.test(file) && !file.endsWith('.json') && isHdf5(file)),
  async load(file): Promise<LoadedModel> {
    if (!isHdf5(file)) {
      throw new UserError(`is not an HDF5 file (no HDF5 signature at its start); ${CORRUPT}, or give a Keras model saved with model.save("model.h5")`, file);
    }
    const model = await loadKerasH5Model(file);
    const pair = kerasPairFiles(file);
    return wrapLayersModel(model, file, 'keras-h5', pair ? sha256OfFiles(pair) : sha256Of(file));
  },
};

export const kerasV3Loader: ModelLoader = {
  format: 'keras-v3',
  accepts: (file) => /\.keras$/i.test(file) || (!file.endsWith('.json') && isZip(file)),
  async load(file): Promise<LoadedModel> {
    if (!isZip(file)) {
      throw new UserError(`is not a Keras 3 .keras file (not a zip archive); ${CORRUPT}, or save it again with model.save("model.keras")`, file);
    }
    const model = await loadKerasV3Model(file);
    return wrapLayersModel(model, file, 'keras-v3', sha256Of(file));
  },
};
