/**
 * The real-scale benchmark fixture (issue 15 §2): torchvision's ResNet-18 at 224x224 as PyTorch's exporter writes
 * it (scripts/test-data/torchvision-onnx.py with Debian's torch: weights=None, seeded random weights and BatchNorm
 * statistics, folded into the convs by the exporter; no pretrained weights offline), one 224x224 photo
 * (scikit-image's chelsea.png, Debian python3-skimage, center-cropped and resized once here so both sides read the
 * same pixels), the ImageNet normalisation the CLI detects for a torchvision graph, and the four stage outputs
 * layer1..layer4. fixture.json records the ONNX path, the normalisation, the layers and onnxruntime's logits on the
 * image, which bench/sid_reference.py checks its op-by-op torch rebuild of the graph against.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import * as ort from 'onnxruntime-node';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/engine/preprocessing/presets';
import { PYTHON, ROOT } from './reference';

export const RESNET18_STAGES = [1, 2, 3, 4].map((i) => `/layer${i}/layer${i}.1/relu_1/Relu_output_0`);
/** Short names for tables: layer1..layer4. */
export const stageLabel = (name: string): string => /\/(layer\d)\//.exec(name)?.[1] ?? name;

export interface OnnxFixtureInfo {
  dir: string;
  modelPath: string;
  imagePath: string;
  blockNames: string[];
  logits: number[];
  /** CLI options the fixture needs besides the common ones (its preprocessing). */
  cliArgs: string[];
}

const CACHE = process.env.INFODISCARD_TORCHVISION_DIR ?? path.join(ROOT, '.cache', 'torchvision-onnx');

/** The cached export, made with Debian's torch when missing; throws with what to do when it cannot be made. */
export function resnet18Onnx(): string {
  const file = path.join(CACHE, 'resnet18.onnx');
  if (existsSync(file)) return file;
  const r = spawnSync(PYTHON, [path.join(ROOT, 'scripts', 'test-data', 'torchvision-onnx.py'), '--out', CACHE, 'resnet18'], { encoding: 'utf8' });
  if (r.status !== 0 || !existsSync(file)) {
    throw new Error(`${file} is missing and scripts/test-data/torchvision-onnx.py could not make it (install Debian python3-torch python3-torchvision python3-onnx): ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`);
  }
  return file;
}

/** chelsea.png center-cropped to a square and resized to 224x224 (PIL bicubic), written as a PNG. */
function writePhoto(file: string): void {
  const code = [
    'import os, sys, skimage',
    'from PIL import Image',
    "im = Image.open(os.path.join(os.path.dirname(skimage.__file__), 'data', 'chelsea.png')).convert('RGB')",
    'w, h = im.size; s = min(w, h)',
    'im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)).resize((224, 224), Image.BICUBIC)',
    'im.save(sys.argv[1])',
  ].join('\n');
  const r = spawnSync(PYTHON, ['-c', code, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`could not write the 224x224 photo (install Debian python3-skimage python3-pil): ${(r.stderr || '').trim().split('\n').pop()}`);
}

/** NCHW float32 of the PNG, normalised (pixel/255 - mean) / std: what the CLI's imagenet profile feeds the model. */
function normalisedInput(file: string): Float32Array {
  const png = PNG.sync.read(readFileSync(file));
  const { width, height, data } = png;
  const out = new Float32Array(3 * width * height);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < width * height; i++) out[c * width * height + i] = (data[4 * i + c] / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
  }
  return out;
}

export async function makeResNet18Fixture(dir: string): Promise<OnnxFixtureInfo> {
  mkdirSync(dir, { recursive: true });
  const modelPath = resnet18Onnx();
  const imagePath = path.join(dir, 'test.png');
  writePhoto(imagePath);
  const session = await ort.InferenceSession.create(modelPath);
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', normalisedInput(imagePath), [1, 3, 224, 224]) };
  const out = await session.run(feeds);
  const logits = Array.from(out[session.outputNames[0]].data as Float32Array);
  writeFileSync(path.join(dir, 'fixture.json'), JSON.stringify({
    onnx: modelPath,
    normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD },
    layers: RESNET18_STAGES,
    logits,
  }));
  return { dir, modelPath, imagePath, blockNames: RESNET18_STAGES, logits, cliArgs: ['--preset', 'imagenet', '--resize', 'center-crop'] };
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node --import tsx bench/resnet18_224.ts <outDir>');
    process.exit(2);
  }
  makeResNet18Fixture(out).then((f) => console.log(`wrote ${f.dir}: ${f.blockNames.length} layers, top logit ${Math.max(...f.logits).toFixed(3)}`));
}
