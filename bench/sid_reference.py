#!/usr/bin/env python3
"""PyTorch reference for the infodiscard benchmark: the fixture ResNet rebuilt in torch, and SID written the
plain way a user would write it (autograd through the truncated network, Adam on per-pixel log-sigma).

It is a timing and sanity reference, not a second implementation to be trusted over the CLI.

Reads a fixture directory made by bench/resnet20.ts (model.json + weights.bin + test.png + fixture.json), or by
bench/resnet18_224.ts (fixture.json names an ONNX file, e.g. torchvision's ResNet-18 at 224x224: the graph is run
op by op in torch with the file's own weights, input normalised as fixture.json says), checks that its forward
pass reproduces the tfjs (resp. onnxruntime) logits, then prints one JSON line per analysed layer:
  {"layer", "steps", "seconds", "msPerStep", "loopMsPerStep", "sidMean", "ratio", "deltaF2", "lambda"}
seconds covers the whole layer (delta_f^2 estimate + optimisation) and msPerStep = seconds/steps, the same
definition the benchmark applies to the CLI report; loopMsPerStep is the optimisation loop alone, and
loopCpuMsPerStep its process CPU time (all threads): with --threads 1 on a busy machine, a better estimate of
the uncontended per-step cost than wall time.

  /usr/bin/python3 bench/sid_reference.py --fixture DIR [--layers a,b] [--steps 200] [--samples 16] [--seed 1]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ALPHA, TAU, LR = 1.5, 0.01, 0.05
DELTA_F_SAMPLES = 256
RATIO_SAMPLES = 64
GAUSS_CONST = 0.5 * math.log(2 * math.pi * math.e)


def load_tfjs_weights(model_json):
    """name -> float32 array, straight from the tfjs weightsManifest (shards concatenated in order)."""
    with open(model_json) as fh:
        manifest = json.load(fh)['weightsManifest']
    base = os.path.dirname(model_json)
    weights = {}
    for group in manifest:
        buf = b''.join(open(os.path.join(base, p), 'rb').read() for p in group['paths'])
        offset = 0
        for w in group['weights']:
            assert w['dtype'] == 'float32' and 'quantization' not in w, f"unsupported weight {w['name']}"
            count = int(np.prod(w['shape'], dtype=np.int64))
            weights[w['name']] = np.frombuffer(buf, np.float32, count, offset).reshape(w['shape'])
            offset += 4 * count
    return weights


class ConvBN(nn.Module):
    """Keras Conv2D(padding='same', no bias) + BatchNormalization, inference mode."""

    def __init__(self, w, conv, bn, stride, eps):
        super().__init__()
        kernel = w[f'{conv}/kernel']  # tfjs [kh, kw, in, out] -> torch [out, in, kh, kw]
        kh, kw, cin, cout = kernel.shape
        self.k, self.stride = kh, stride
        self.conv = nn.Conv2d(cin, cout, kh, stride, padding=0, bias=False)
        self.conv.weight.data = torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy())
        self.bn = nn.BatchNorm2d(cout, eps=eps)  # Keras epsilon (1e-3), not torch's 1e-5
        for ours, theirs in [('weight', 'gamma'), ('bias', 'beta'), ('running_mean', 'moving_mean'), ('running_var', 'moving_variance')]:
            getattr(self.bn, ours).data = torch.from_numpy(w[f'{bn}/{theirs}'].copy())

    def forward(self, x):
        # TF 'same' puts the odd padding pixel bottom/right (3x3 stride 2 on 32 -> pad 0 top, 1 bottom);
        # torch's symmetric padding would shift the sampling grid.
        size = x.shape[-1]
        total = max((math.ceil(size / self.stride) - 1) * self.stride + self.k - size, 0)
        x = F.pad(x, (total // 2, total - total // 2, total // 2, total - total // 2))
        return self.bn(self.conv(x))


class Block(nn.Module):
    def __init__(self, w, name, stride, eps):
        super().__init__()
        self.a = ConvBN(w, f'{name}_conv1', f'{name}_bn1', stride, eps)
        self.b = ConvBN(w, f'{name}_conv2', f'{name}_bn2', 1, eps)
        self.proj = ConvBN(w, f'{name}_proj', f'{name}_proj_bn', stride, eps) if stride == 2 else None

    def forward(self, x):
        y = self.b(F.relu(self.a(x)))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


class Stem(nn.Module):
    def __init__(self, w, eps):
        super().__init__()
        self.c = ConvBN(w, 'stem_conv', 'stem_bn', 1, eps)

    def forward(self, x):
        return F.relu(self.c(x))


class Head(nn.Module):
    def __init__(self, w):
        super().__init__()
        kernel = w['logits/kernel']  # tfjs [in, out] -> torch [out, in]
        self.fc = nn.Linear(kernel.shape[0], kernel.shape[1])
        self.fc.weight.data = torch.from_numpy(kernel.T.copy())
        self.fc.bias.data = torch.from_numpy(w['logits/bias'].copy())

    def forward(self, x):
        return self.fc(x.mean(dim=(2, 3)))


def build(fixture_dir):
    """(names, stages): stages[i] produces the output named names[i]; 'logits' is last."""
    with open(os.path.join(fixture_dir, 'fixture.json')) as fh:
        fx = json.load(fh)
    w = load_tfjs_weights(os.path.join(fixture_dir, 'model.json'))
    eps = fx['bnEpsilon']
    names, stages = ['stem'], [Stem(w, eps)]
    for s in range(3):
        for b in range(fx['n']):
            names.append(f'stage{s + 1}_block{b + 1}')
            stages.append(Block(w, names[-1], 2 if s > 0 and b == 0 else 1, eps))
    names.append('logits')
    stages.append(Head(w))
    for m in stages:
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
    return fx, names, stages


class OnnxGraph(nn.Module):
    """A plain ONNX CNN graph (Conv, Relu, Add, MaxPool, GlobalAveragePool, Flatten, Gemm: torchvision's ResNets)
    run op by op in torch, up to the node that outputs `until` (the whole graph when None). Input: [0,1] pixels,
    normalised (x - mean) / std per channel first, as the CLI's imagenet profile does."""

    def __init__(self, path, mean, std, until=None):
        super().__init__()
        import onnx  # Debian's python3-onnx; only this mode needs it
        from onnx import numpy_helper
        model = onnx.load(path)
        g = model.graph
        self.weights = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
        self.input = [i.name for i in g.input if i.name not in self.weights][0]
        self.nodes = []
        for n in g.node:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            self.nodes.append((n.op_type, list(n.input), list(n.output), attrs))
            if until is not None and until in n.output:
                break
        else:
            if until is not None:
                raise SystemExit(f'{path}: no node outputs {until}')
        self.until = until or g.output[0].name
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)

    @staticmethod
    def _pads(attrs):
        p = attrs.get('pads', [0, 0, 0, 0])
        return (p[1], p[3], p[0], p[2])  # ONNX [top, left, bottom, right] -> F.pad (left, right, top, bottom)

    def forward(self, x):
        env = {self.input: (x - self.mean) / self.std}
        get = lambda name: env[name] if name in env else self.weights[name]
        for op, ins, outs, a in self.nodes:
            if op == 'Conv':
                y = F.conv2d(F.pad(get(ins[0]), self._pads(a)), get(ins[1]), get(ins[2]) if len(ins) > 2 else None,
                             stride=a.get('strides', [1, 1]), dilation=a.get('dilations', [1, 1]), groups=a.get('group', 1))
            elif op == 'Relu':
                y = F.relu(get(ins[0]))
            elif op == 'Add':
                y = get(ins[0]) + get(ins[1])
            elif op == 'MaxPool':
                y = F.max_pool2d(F.pad(get(ins[0]), self._pads(a), value=-math.inf), a['kernel_shape'], a.get('strides', a['kernel_shape']),
                                 ceil_mode=bool(a.get('ceil_mode', 0)))
            elif op == 'GlobalAveragePool':
                y = get(ins[0]).mean(dim=(2, 3), keepdim=True)
            elif op == 'Flatten':
                y = get(ins[0]).flatten(a.get('axis', 1))
            elif op == 'Gemm':
                w = get(ins[1])
                y = get(ins[0]) @ (w.T if a.get('transB', 0) else w) * a.get('alpha', 1.0)
                if len(ins) > 2:
                    y = y + a.get('beta', 1.0) * get(ins[2])
            else:
                raise SystemExit(f'ONNX op {op} is not supported by this reference (node output {outs[0]})')
            env[outs[0]] = y
        return env[self.until]


def build_onnx(fixture_dir):
    """(fx, names, make): make(layer) is the graph truncated at that output (None: the whole model)."""
    with open(os.path.join(fixture_dir, 'fixture.json')) as fh:
        fx = json.load(fh)
    path = fx['onnx'] if os.path.isabs(fx['onnx']) else os.path.join(fixture_dir, fx['onnx'])

    def make(layer):
        m = OnnxGraph(path, fx['normalize']['mean'], fx['normalize']['std'], layer).eval()
        return m
    return fx, fx['layers'], make


def truncated(names, stages, layer):
    return nn.Sequential(*stages[: names.index(layer) + 1]).eval()


def load_image(path):
    from PIL import Image  # only needed here; Debian's python3-pil
    rgb = np.asarray(Image.open(path).convert('RGB'), dtype=np.float32) / 255.0
    return torch.from_numpy(rgb.transpose(2, 0, 1).copy()).unsqueeze(0)  # NCHW, [0,1] as the CLI feeds it


def sq_dist(out, f):
    return ((out - f) ** 2).flatten(1).sum(1)


def sid(h, x, steps, k, gen):
    """The plain SID loop for one image at one layer. Returns a result dict (timings included)."""
    t0 = time.perf_counter()
    with torch.no_grad():
        f = h(x)
        # delta_f^2 = E||h(x + sqrt(tau) eps) - f||^2, estimated once in batches of K.
        delta_f2 = torch.cat([sq_dist(h(x + math.sqrt(TAU) * torch.randn((k,) + x.shape[1:], generator=gen)), f)
                              for _ in range(DELTA_F_SAMPLES // k)]).mean()
    # One log-sigma per pixel, shared across channels; start at sigma = sqrt(tau), i.e. ratio ~ 1.
    v = torch.full((1, 1) + x.shape[2:], 0.5 * math.log(TAU), requires_grad=True)
    opt = torch.optim.Adam([v], lr=LR)
    lam = 1.0
    t1, c1 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        delta = torch.randn((k,) + x.shape[1:], generator=gen)
        ratio = sq_dist(h(x + v.exp() * delta), f).mean() / delta_f2
        loss = ratio - lam * v.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            v.clamp_(max=0.0)  # sigma <= 1
        # Push the constraint towards alpha: more entropy reward while the features change too little.
        lam *= math.exp(0.05 * (ALPHA - ratio.item()))
    t2, c2 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        ratio = torch.cat([sq_dist(h(x + v.exp() * torch.randn((k,) + x.shape[1:], generator=gen)), f)
                           for _ in range(RATIO_SAMPLES // k)]).mean() / delta_f2
    return dict(steps=steps, seconds=t2 - t0, msPerStep=1000 * (t2 - t0) / max(steps, 1),
                loopMsPerStep=1000 * (t2 - t1) / max(steps, 1), loopCpuMsPerStep=1000 * (c2 - c1) / max(steps, 1), sidMean=float((v + GAUSS_CONST).mean()),
                ratio=float(ratio), deltaF2=float(delta_f2), **{'lambda': lam})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--fixture', required=True, help='directory written by bench/resnet20.ts')
    ap.add_argument('--image', help='PNG to analyse (default: FIXTURE/test.png)')
    ap.add_argument('--layers', default='stem,stage1_block1,stage2_block1,stage3_block3')
    ap.add_argument('--steps', type=int, default=200)
    ap.add_argument('--samples', type=int, default=16, help='K noise samples per step')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--check-only', action='store_true', help='only verify the forward pass against tfjs')
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    with open(os.path.join(args.fixture, 'fixture.json')) as fh:
        is_onnx = 'onnx' in json.load(fh)
    if is_onnx:
        fx, names, make = build_onnx(args.fixture)
        whole = make(None)
        get_model = make
    else:
        fx, names, stages = build(args.fixture)
        whole = nn.Sequential(*stages)
        get_model = lambda layer: truncated(names, stages, layer)
    x = load_image(args.image or os.path.join(args.fixture, 'test.png'))

    # Forward check: same weights, same image -> same logits as tfjs / onnxruntime (float32 reassociation only;
    # a 1000-way ImageNet head through 18 layers gets a tolerance relative to the logits' scale).
    with torch.no_grad():
        logits = whole(x)[0].numpy()
    want = np.asarray(fx['logits'], dtype=np.float32)
    err = float(np.abs(logits - want).max())
    ok = err < 1e-4 * max(1.0, float(np.abs(want).max()))
    print(json.dumps({'check': 'forward', 'maxAbsDiff': err, 'ok': ok, 'torch': torch.__version__, 'threads': args.threads}), flush=True)
    if not ok:
        sys.exit('forward pass does not match the tfjs logits; the SID comparison would be meaningless')
    if args.check_only:
        return

    layers = [s for s in args.layers.split(',') if s]
    unknown = [l for l in layers if l not in names]
    if unknown:
        sys.exit(f'unknown layers {unknown}; available: {",".join(names)}')
    # One untimed forward/backward so one-off allocator/kernel set-up does not land on the first layer.
    xw = x.repeat(args.samples, 1, 1, 1).requires_grad_(True)
    whole(xw).sum().backward()

    for layer in layers:
        gen = torch.Generator().manual_seed(args.seed)
        res = sid(get_model(layer), x, args.steps, args.samples, gen)
        print(json.dumps({'layer': layer, **res}), flush=True)


if __name__ == '__main__':
    main()
