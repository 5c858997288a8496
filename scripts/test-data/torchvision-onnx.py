"""Exports torchvision architectures to ONNX for test/torchvision-onnx.test.ts.

Run: /usr/bin/python3 scripts/test-data/torchvision-onnx.py [--out .cache/torchvision-onnx] [name ...]
Needs Debian's python3-torch, python3-torchvision and python3-onnx. Nothing is downloaded: every model is built
with weights=None and seeded random weights (BatchNorm running statistics randomised too, so no BN is an identity),
in eval mode, and exported the way a user would: torch.onnx.export, opset 13, a fixed 1x3x224x224 input (no dynamic
axes), constant folding on. Zero-initialised weight matrices get small random values. Besides the torchvision zoo, `vit_tiny` is a 2-block VisionTransformer at 64x64 (the same
code path as ViT-B/16, small enough for the default test run).

Writes <out>/<name>.onnx and <out>/manifest.json ({name: {file, size, opset, torch, error?}}); a model whose export
fails is recorded with its error instead of stopping the run. Existing exports are kept unless --force.
"""
import argparse
import json
import os
import sys
import time

import torch
import torchvision
from torchvision import models

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPSET = 13


def vit_tiny():
    from torchvision.models.vision_transformer import VisionTransformer
    return VisionTransformer(image_size=64, patch_size=16, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=128, num_classes=10)


# name -> (constructor, image size)
MODELS = {
    'resnet18': (lambda: models.resnet18(weights=None), 224),
    'resnet50': (lambda: models.resnet50(weights=None), 224),
    'vgg11_bn': (lambda: models.vgg11_bn(weights=None), 224),
    'mobilenet_v2': (lambda: models.mobilenet_v2(weights=None), 224),
    'mobilenet_v3_small': (lambda: models.mobilenet_v3_small(weights=None), 224),
    'mobilenet_v3_large': (lambda: models.mobilenet_v3_large(weights=None), 224),
    'efficientnet_b0': (lambda: models.efficientnet_b0(weights=None), 224),
    'densenet121': (lambda: models.densenet121(weights=None), 224),
    'squeezenet1_1': (lambda: models.squeezenet1_1(weights=None), 224),
    'googlenet': (lambda: models.googlenet(weights=None, aux_logits=False, init_weights=True), 224),
    'shufflenet_v2_x1_0': (lambda: models.shufflenet_v2_x1_0(weights=None), 224),
    'regnet_y_400mf': (lambda: models.regnet_y_400mf(weights=None), 224),
    'mnasnet1_0': (lambda: models.mnasnet1_0(weights=None), 224),
    'convnext_tiny': (lambda: models.convnext_tiny(weights=None), 224),
    'vit_b_16': (lambda: models.vit_b_16(weights=None), 224),
    'swin_t': (lambda: models.swin_t(weights=None), 224),
    'vit_tiny': (vit_tiny, 64),
}


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # Zero-initialised weight matrices (ViT's classification head) would make the output constant, so every
        # gradient of it zero: give them small random values as training would.
        for p in model.parameters():
            if p.dim() >= 2 and not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.5 + 0.75)
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.join(ROOT, '.cache', 'torchvision-onnx'))
    ap.add_argument('--force', action='store_true')
    ap.add_argument('names', nargs='*')
    args = ap.parse_args()
    names = args.names or list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        sys.exit(f'unknown model(s): {", ".join(unknown)}; known: {", ".join(MODELS)}')
    os.makedirs(args.out, exist_ok=True)
    manifest_path = os.path.join(args.out, 'manifest.json')
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {}
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for i, name in enumerate(names):
        file = os.path.join(args.out, f'{name}.onnx')
        if not args.force and os.path.exists(file) and name in manifest and 'error' not in manifest[name]:
            print(f'{name}: kept ({file})')
            continue
        build, size = MODELS[name]
        entry = {'file': f'{name}.onnx', 'opset': OPSET, 'torch': torch.__version__, 'torchvision': torchvision.__version__, 'size': size}
        t0 = time.time()
        try:
            torch.manual_seed(1000 + i)
            model = randomise(build(), 2000 + i).eval()
            x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(7))
            # Not under no_grad: in eval mode without gradients nn.MultiheadAttention takes its fused fast path
            # (aten::_native_multi_head_attention), which the exporter cannot write; with gradients enabled it
            # traces the plain ops, as a user's export of a trained ViT does.
            torch.onnx.export(model, x, file, opset_version=OPSET, input_names=['input'], output_names=['logits'], do_constant_folding=True)
            entry['bytes'] = os.path.getsize(file)
            print(f'{name}: exported in {time.time() - t0:.1f} s ({entry["bytes"] / 1e6:.1f} MB)')
        except Exception as e:  # recorded, not fatal: the test reports which architectures the exporter manages
            entry['error'] = f'{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ""}'
            if os.path.exists(file):
                os.remove(file)
            print(f'{name}: export failed: {entry["error"]}')
        manifest[name] = entry
        with open(manifest_path, 'w') as f:
            json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == '__main__':
    main()
