/**
 * Renames the node outputs of ONNX files exported by torch.onnx.export, in place, so the layers infodiscard lists
 * (node output names) are readable and the same block has the same name in every model of a family.
 *
 *   node --import tsx scripts/families/rename-onnx.ts jobs.json
 *
 * jobs.json: [{ "file": "media/families/depth-resnet/resnet8.onnx", "rename": { "/stem/stem.2/Relu_output_0": "stem" } }]
 *
 * Every name in "rename" must be a node output of the graph (else the job fails). The other torch-scoped names are
 * tidied: "/stage1.0/conv1/Conv_output_0" becomes "stage1.0.conv1.Conv" (the leading "/" and the "_output_0" go,
 * "/" becomes "."). Names are replaced consistently in node inputs and outputs, graph outputs and value_info;
 * initializer and graph-input names are left alone. The result must have unique value names, else the job fails.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { onnx } from 'onnx-proto';

interface Job {
  file: string;
  rename: Record<string, string>;
}

const TORCH_SCOPED = /^\/(.+)_output_(\d+)$/;

/** torch's scoped name without the noise, or undefined when the name is not one of torch's scoped node outputs. */
export function tidyName(name: string): string | undefined {
  const m = TORCH_SCOPED.exec(name);
  if (!m) return undefined;
  const base = m[1].replace(/\//g, '.');
  return m[2] === '0' ? base : `${base}.${m[2]}`;
}

export function renameModel(bytes: Uint8Array, rename: Record<string, string>, what = 'model'): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const graph = model.graph;
  if (!graph) throw new Error(`${what}: no graph`);
  const nodes = graph.node ?? [];
  const outputs = new Set(nodes.flatMap((n) => n.output ?? []));
  const fixed = new Set([...(graph.initializer ?? []).map((t) => t.name ?? ''), ...(graph.input ?? []).map((i) => i.name ?? '')]);
  const missing = Object.keys(rename).filter((k) => !outputs.has(k));
  if (missing.length) throw new Error(`${what}: no node output named ${missing.map((m) => JSON.stringify(m)).join(', ')}`);

  const map = new Map<string, string>();
  for (const name of outputs) {
    if (!name || fixed.has(name)) continue;
    const to = rename[name] ?? tidyName(name);
    if (to !== undefined && to !== name) map.set(name, to);
  }
  // Unique names after renaming: the renamed outputs, the untouched outputs, initializers and inputs.
  const seen = new Map<string, string>();
  for (const name of [...outputs, ...fixed]) {
    if (!name) continue;
    const to = map.get(name) ?? name;
    const prev = seen.get(to);
    if (prev !== undefined && prev !== name) throw new Error(`${what}: "${prev}" and "${name}" would both be named "${to}"`);
    seen.set(to, name);
  }
  const sub = (n: string) => map.get(n) ?? n;
  for (const node of nodes) {
    node.input = (node.input ?? []).map(sub);
    node.output = (node.output ?? []).map(sub);
  }
  for (const o of graph.output ?? []) o.name = sub(o.name ?? '');
  for (const v of graph.valueInfo ?? []) v.name = sub(v.name ?? '');
  return onnx.ModelProto.encode(model).finish();
}

function main(): void {
  const jobsFile = process.argv[2];
  if (!jobsFile) {
    console.error('usage: node --import tsx scripts/families/rename-onnx.ts jobs.json');
    process.exit(2);
  }
  const jobs = JSON.parse(readFileSync(jobsFile, 'utf8')) as Job[];
  for (const job of jobs) {
    writeFileSync(job.file, renameModel(readFileSync(job.file), job.rename, job.file));
  }
  console.log(`renamed the layers of ${jobs.length} ONNX file(s)`);
}

if (process.argv[1] && /rename-onnx\.ts$/.test(process.argv[1])) main();
