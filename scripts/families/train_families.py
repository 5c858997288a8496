#!/usr/bin/python3
"""Trains the small Fashion-MNIST model families of media/families and exports them to ONNX.

    /usr/bin/python3 scripts/families/train_families.py --out media/families --seed 1
    /usr/bin/python3 scripts/families/train_families.py --quick            # smoke run into out/families-quick
    nice -n 19 /usr/bin/python3 scripts/families/train_families.py --seed 2   # the same models, seed 2 (and --seed 3)

Another seed (no --out) writes media/families/seed<N>/ (same relative paths, its own manifest.json, the folder's
images) and then merges the seed groups into media/families/manifest.json (every model's seed, its variant group and
the other seeds' runs; `--merge-seeds` only re-merges). Seed 1's files are not touched.

Debian's PyTorch (python3-torch, 1.13) and Debian's Fashion-MNIST (dataset-fashion-mnist) on the CPU with 2
threads; node (with this repository's node_modules) for the renaming step (scripts/families/rename-onnx.ts).
Writes <out>/<family>/<model>.onnx, <out>/images/ (8 test images and boxes.json), <out>/manifest.json and
<out>/README.md. Deterministic for a given seed on a given machine: seeded initialisation (torch.manual_seed right
before a model is built), a seeded training subset and seeded data order (one torch.Generator per training run).

The families (the paper's Sec. 4, on Fashion-MNIST instead of CIFAR-10/CUB):
  depth-resnet   ResNet-8/14/20 (CIFAR-style, widths 8/16/32, 28x28 input)
  depth-plain    plain CNNs with 2/4/6 conv layers (16 then 32 channels, max-pool after each half, FC head)
  damage         ResNet-14 and copies with a 1x1 conv block (M->8->M, ReLU, no skip) between two residual blocks
  compression    Plain-6 magnitude-pruned (layerwise) by 0/50/75/90 %, each fine-tuned 1 epoch with the mask kept
  distillation   a wider Plain-4 teacher; the same narrow Plain-4 student trained on labels or on soft targets (T=4)
  epochs         ResNet-8 checkpoints of one longer run
  task           ResNet-14 classifier and an auto-encoder with the ResNet-14 encoder (ConvTranspose decoder, MSE)

Inputs are NCHW float [N,1,28,28], pixel/255 in [0,1], no other normalisation; the batch dimension is dynamic.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DATA_DIR = os.environ.get('FASHION_MNIST_DIR', '/usr/share/datasets/fashion-mnist')
CLASSES = ['tshirt', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot']
# The analysis images: the first test image of each of these classes (the first six are media/sample/images).
IMAGE_CLASSES = [0, 1, 2, 3, 5, 7, 8, 9]
BATCH = 128


# ---------------------------------------------------------------------------------------------------------------
# Data

def read_idx(name):
    path = os.path.join(DATA_DIR, name)
    if not os.path.exists(path):
        path += '.gz'
    with open(path, 'rb') as f:
        raw = f.read()
    if raw[:2] == b'\x1f\x8b':
        raw = gzip.decompress(raw)
    magic, count = struct.unpack('>II', raw[:8])
    if magic == 0x803:
        rows, cols = struct.unpack('>II', raw[8:16])
        return np.frombuffer(raw, np.uint8, count * rows * cols, 16).reshape(count, rows, cols)
    if magic == 0x801:
        return np.frombuffer(raw, np.uint8, count, 8)
    raise ValueError(f'{path}: bad IDX magic {magic:#x}')


def to_tensor(images):
    """uint8 [N,28,28] -> float [N,1,28,28] in [0,1] (the models' input)."""
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


# ---------------------------------------------------------------------------------------------------------------
# Models. Module names matter: torch.onnx.export scopes node outputs by them, and onnx_names() maps the scoped
# names of the block outputs to the clean names the families share.

def conv_bn_relu(cin, cout, k=3, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu(y + self.shortcut(x))


class DamageBlock(nn.Module):
    """The paper's architectural damage: 1x1 conv M->N, ReLU, 1x1 conv N->M, ReLU, no skip connection."""

    def __init__(self, m, n=8):
        super().__init__()
        self.conv1 = nn.Conv2d(m, n, 1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(n, m, 1)
        self.relu2 = nn.ReLU()

    def forward(self, x):
        return self.relu2(self.conv2(self.relu1(self.conv1(x))))


class ResNet(nn.Module):
    """CIFAR-style ResNet-(6n+2): stem, three stages of n basic blocks (widths w, 2w, 4w; stride 2 entering stages 2
    and 3), global average pooling, FC. damage_at=(stage, block) inserts a DamageBlock after that block (0-based);
    head='none' stops after stage 3 (the auto-encoder's encoder). The damage block and the head are built after the
    shared layers, so a seed gives the shared layers the same initial weights in every variant."""

    def __init__(self, n, widths=(8, 16, 32), damage_at=None, head='fc', classes=10):
        super().__init__()
        self.n = n
        self.stem = conv_bn_relu(1, widths[0])
        cin = widths[0]
        self.stages = []
        for s, w in enumerate(widths, 1):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(cin, w, 2 if (s > 1 and j == 0) else 1))
                cin = w
            setattr(self, f'stage{s}', nn.Sequential(*blocks))
            self.stages.append(f'stage{s}')
        self.channels = cin
        self.head = head
        if head == 'fc':
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, classes)
        self.damage_at = damage_at
        if damage_at is not None:
            self.damage = DamageBlock(widths[damage_at[0] - 1], 8)

    def features(self, x):
        x = self.stem(x)
        for s, name in enumerate(self.stages, 1):
            for j, block in enumerate(getattr(self, name)):
                x = block(x)
                if self.damage_at == (s, j):
                    x = self.damage(x)
        return x

    def forward(self, x):
        x = self.features(x)
        return self.fc(torch.flatten(self.gap(x), 1))

    def layer_modules(self):
        """Clean layer name -> the module whose output it is (for the shapes and means in the manifest)."""
        mods = {'stem': self.stem}
        for s in range(1, 4):
            stage = getattr(self, f'stage{s}')
            for j in range(self.n):
                mods[f'stage{s}' if j == self.n - 1 else f'stage{s}.{j}'] = stage[j]
        if self.damage_at is not None:
            mods['damage'] = self.damage
        if self.head == 'fc':
            mods['gap'] = self.gap
        return mods

    def onnx_names(self):
        names = {'/stem/stem.2/Relu_output_0': 'stem'}
        for s in range(1, 4):
            for j in range(self.n):
                names[f'/stage{s}.{j}/relu/Relu_output_0'] = f'stage{s}' if j == self.n - 1 else f'stage{s}.{j}'
        if self.damage_at is not None:
            names['/damage/relu1/Relu_output_0'] = 'damage.relu1'
            names['/damage/relu2/Relu_output_0'] = 'damage'
        if self.head == 'fc':
            names['/gap/GlobalAveragePool_output_0'] = 'gap'
            names['/Flatten_output_0'] = 'flatten'
        return names


class ConvTranspose2x2(nn.ConvTranspose2d):
    """ConvTranspose2d(kernel 2, stride 2), exported as ConvTranspose. torch 1.13's CPU ConvTranspose is ~30x
    slower than a convolution, so training computes the same function as a 1x1 convolution to 4x the channels and a
    pixel shuffle (the 2x2 kernel does not overlap)."""

    def __init__(self, cin, cout):
        super().__init__(cin, cout, 2, 2)

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return super().forward(x)
        cin, cout = self.weight.shape[:2]
        w = self.weight.permute(1, 2, 3, 0).reshape(cout * 4, cin, 1, 1)
        return F.pixel_shuffle(F.conv2d(x, w, self.bias.repeat_interleave(4)), 2)


class AutoEncoder(nn.Module):
    """The ResNet encoder (stem, stage1..3: 7x7) and a ConvTranspose decoder back to 1x28x28 with a sigmoid."""

    def __init__(self, n, widths=(8, 16, 32)):
        super().__init__()
        self.encoder = ResNet(n, widths, head='none')
        self.dec1 = nn.Sequential(ConvTranspose2x2(widths[2], widths[1]), nn.ReLU())
        self.dec2 = nn.Sequential(ConvTranspose2x2(widths[1], widths[0]), nn.ReLU())
        self.out = nn.Conv2d(widths[0], 1, 3, 1, 1)

    def forward(self, x):
        return torch.sigmoid(self.out(self.dec2(self.dec1(self.encoder.features(x)))))

    def layer_modules(self):
        return {**self.encoder.layer_modules(), 'dec1': self.dec1, 'dec2': self.dec2}

    def onnx_names(self):
        # The encoder runs through features(), not __call__, so torch scopes its nodes without an "/encoder" prefix.
        names = dict(self.encoder.onnx_names())
        names['/dec1/dec1.1/Relu_output_0'] = 'dec1'
        names['/dec2/dec2.1/Relu_output_0'] = 'dec2'
        names['/out/Conv_output_0'] = 'out'
        return names


class PlainCNN(nn.Module):
    """Conv-BN-ReLU layers conv1..convD (convs[0] of widths[0] channels, then convs[1] of widths[1]), a 2x2 max-pool
    after each group (stage1: 14x14, stage2: 7x7), flatten, FC (a VGG/AlexNet-style head, no global pooling)."""

    def __init__(self, convs=(2, 2), widths=(16, 32), classes=10):
        super().__init__()
        self.plan = []
        cin, i = 1, 0
        for s, (k, w) in enumerate(zip(convs, widths), 1):
            for _ in range(k):
                i += 1
                setattr(self, f'conv{i}', conv_bn_relu(cin, w))
                self.plan.append(f'conv{i}')
                cin = w
            setattr(self, f'pool{s}', nn.MaxPool2d(2))
            self.plan.append(f'pool{s}')
        self.depth = i
        self.fc = nn.Linear(cin * 7 * 7, classes)

    def forward(self, x):
        for name in self.plan:
            x = getattr(self, name)(x)
        return self.fc(torch.flatten(x, 1))

    def layer_modules(self):
        mods = {f'conv{i}': getattr(self, f'conv{i}') for i in range(1, self.depth + 1)}
        return {**mods, 'stage1': self.pool1, 'stage2': self.pool2}

    def onnx_names(self):
        names = {f'/conv{i}/conv{i}.2/Relu_output_0': f'conv{i}' for i in range(1, self.depth + 1)}
        names.update({'/pool1/MaxPool_output_0': 'stage1', '/pool2/MaxPool_output_0': 'stage2'})
        names['/Flatten_output_0'] = 'flatten'
        return names


def init_weights(model):
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model


def build(seed, ctor):
    torch.manual_seed(seed)
    return init_weights(ctor())


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def prunable(model):
    """The conv, transposed-conv and dense weight tensors (what pruning zeroes)."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


# ---------------------------------------------------------------------------------------------------------------
# Training

class Trainer:
    def __init__(self, args, train_x, train_y, test_x, test_y):
        self.args = args
        self.train_x, self.train_y, self.test_x, self.test_y = train_x, train_y, test_x, test_y

    def batches(self, gen):
        n = self.train_x.shape[0]
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            yield self.train_x[idx], self.train_y[idx], idx

    def fit(self, model, epochs, lr, loss_fn, optimizer='sgd', masks=None, on_epoch=None, seed=None):
        """Cosine-annealed training from lr to 0 over `epochs` epochs, in a data order seeded by `seed`.
        loss_fn(model, x, y, idx) -> loss. masks: tensors multiplied into prunable() after every step.
        on_epoch(epoch) is called after each epoch (and with 0 before the first)."""
        gen = torch.Generator().manual_seed(self.args.seed if seed is None else seed)
        steps = epochs * ((self.train_x.shape[0] + BATCH - 1) // BATCH)
        if optimizer == 'adam':
            opt = torch.optim.Adam(model.parameters(), lr=lr)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + np.cos(np.pi * min(t, steps) / steps)))
        weights = prunable(model) if masks is not None else None
        if on_epoch:
            on_epoch(0)
        for epoch in range(1, epochs + 1):
            model.train()
            total, count = 0.0, 0
            for x, y, idx in self.batches(gen):
                loss = loss_fn(model, x, y, idx)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                if masks is not None:
                    with torch.no_grad():
                        for w, m in zip(weights, masks):
                            w.mul_(m)
                total += loss.item() * x.shape[0]
                count += x.shape[0]
            print(f'    epoch {epoch}/{epochs}: loss {total / count:.4f}', flush=True)
            if on_epoch:
                on_epoch(epoch)
        model.eval()
        return model

    @torch.no_grad()
    def accuracy(self, model):
        model.eval()
        correct = 0
        for i in range(0, self.test_x.shape[0], 1000):
            correct += (model(self.test_x[i:i + 1000]).argmax(1) == self.test_y[i:i + 1000]).sum().item()
        return correct / self.test_x.shape[0]

    @torch.no_grad()
    def mse(self, model):
        model.eval()
        total = 0.0
        for i in range(0, self.test_x.shape[0], 1000):
            x = self.test_x[i:i + 1000]
            total += F.mse_loss(model(x), x, reduction='sum').item()
        return total / self.test_x.numel()


def ce_loss(model, x, y, idx):
    return F.cross_entropy(model(x), y)


def mse_loss(model, x, y, idx):
    return F.mse_loss(model(x), x)


def kd_loss(teacher_logits, temperature, alpha):
    """Hinton et al.: alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(labels)."""

    def loss(model, x, y, idx):
        s = model(x)
        t = teacher_logits[idx]
        soft = F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1), reduction='batchmean')
        return alpha * temperature * temperature * soft + (1 - alpha) * F.cross_entropy(s, y)

    return loss


def magnitude_masks(model, fraction):
    """Layerwise magnitude pruning: in every conv/dense weight tensor, the round(fraction * size) smallest |w| -> 0."""
    masks = []
    with torch.no_grad():
        for w in prunable(model):
            flat = w.abs().flatten()
            k = int(round(fraction * flat.numel()))
            mask = torch.ones_like(flat)
            if k > 0:
                order = torch.sort(flat, stable=True).indices
                mask[order[:k]] = 0
            mask = mask.view_as(w)
            w.mul_(mask)
            masks.append(mask)
    return masks


# ---------------------------------------------------------------------------------------------------------------
# Export

class Exporter:
    def __init__(self, out, images):
        self.out = out
        self.images = images  # float [8,1,28,28]
        self.jobs = []

    def export(self, model, rel, output='logits'):
        path = os.path.join(self.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        model.eval()
        torch.onnx.export(model, self.images[:1], path, opset_version=13, input_names=['input'], output_names=[output],
                          dynamic_axes={'input': {0: 'batch'}, output: {0: 'batch'}}, do_constant_folding=True)
        self.jobs.append({'file': path, 'rename': model.onnx_names()})
        # PyTorch's view of the named layers on the 8 images: shape [C,H,W] and per-image mean, for the test.
        seen = {}
        hooks = [m.register_forward_hook(lambda _m, _i, o, name=name: seen.__setitem__(name, o.detach()))
                 for name, m in model.layer_modules().items()]
        with torch.no_grad():
            y = model(self.images)
        for h in hooks:
            h.remove()
        extra = {'layerShapes': {k: list(v.shape[1:]) for k, v in seen.items()},
                 'layerMeans': {k: [round(float(m), 5) for m in v.flatten(1).mean(1)] for k, v in seen.items()}}
        if output == 'logits':
            return {'logits': [[round(float(v), 4) for v in row] for row in y], **extra}
        # The auto-encoder: its reconstruction average-pooled 4x4 (7x7 = 49 numbers per image).
        pooled = F.avg_pool2d(y, 4).flatten(1)
        return {'outputs': [[round(float(v), 4) for v in row] for row in pooled], **extra}

    def rename_all(self):
        with tempfile.NamedTemporaryFile('w', suffix='.json', delete=False) as f:
            json.dump(self.jobs, f)
            jobs = f.name
        try:
            subprocess.run(['node', '--import', 'tsx', os.path.join(HERE, 'rename-onnx.ts'), jobs], cwd=REPO, check=True)
        finally:
            os.unlink(jobs)


# ---------------------------------------------------------------------------------------------------------------

def write_images(out, test_images, test_labels, write=True):
    """The first test image of each IMAGE_CLASSES class as an 8-bit grayscale PNG, and boxes.json (tight box of
    the pixels > 0). Returns (file names, test-set indices). write=False: only the names and indices (a seed run
    inside a families folder shares the folder's images)."""
    folder = os.path.join(out, 'images')
    if not write:
        return ([f'{c}-{CLASSES[c]}.png' for c in IMAGE_CLASSES],
                [int(np.nonzero(test_labels == c)[0][0]) for c in IMAGE_CLASSES])
    os.makedirs(folder, exist_ok=True)
    files, indices, boxes = [], [], {}
    for c in IMAGE_CLASSES:
        i = int(np.nonzero(test_labels == c)[0][0])
        name = f'{c}-{CLASSES[c]}.png'
        img = test_images[i]
        Image.fromarray(img, mode='L').save(os.path.join(folder, name), optimize=False)
        ys, xs = np.nonzero(img > 0)
        x0, y0 = int(xs.min()), int(ys.min())
        boxes[name] = {'bbox': [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]}
        files.append(name)
        indices.append(i)
    lines = [f'  {json.dumps(k)}: {json.dumps(v, separators=(",", ":"))}' for k, v in boxes.items()]
    with open(os.path.join(folder, 'boxes.json'), 'w') as f:
        f.write('{\n' + ',\n'.join(lines) + '\n}\n')
    return files, indices


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=None, help='output folder (default media/families; with --quick out/families-quick)')
    ap.add_argument('--seed', type=int, default=1,
                    help='seed of the initial weights, training subset and data order (default 1; with another seed and no '
                         '--out the run goes to media/families/seed<N> and is merged into media/families/manifest.json)')
    ap.add_argument('--merge-seeds', action='store_true',
                    help='only (re)write the seed groups of <out>/manifest.json from <out>/seed*/manifest.json')
    ap.add_argument('--quick', action='store_true', help='tiny smoke run: 512 training images, 1 epoch, 1000 test images')
    ap.add_argument('--train-size', type=int, default=None, help='training images (a seeded subset of the 60k; default 16000)')
    ap.add_argument('--epochs', type=int, default=None, help='epochs of every training run (default 4)')
    ap.add_argument('--readme-only', action='store_true', help='only rewrite <out>/README.md from <out>/manifest.json')
    ap.add_argument('--checkpoint-epochs', default=None, help='epochs of the epochs family (default 0,1,2,3,4,6,8)')
    args = ap.parse_args()
    if args.out is None:
        args.out = os.path.join(REPO, 'out', 'families-quick') if args.quick else os.path.join(REPO, 'media', 'families')
        if args.seed != 1 and not args.merge_seeds and not args.readme_only:
            args.out = os.path.join(args.out, f'seed{args.seed}')
    if args.merge_seeds:
        merge_seeds(args.out)
        return
    if args.readme_only:
        with open(os.path.join(args.out, 'manifest.json')) as f:
            write_readme(args.out, json.load(f))
        return
    train_size = args.train_size or (512 if args.quick else 16000)
    epochs = args.epochs or (1 if args.quick else 4)
    ckpts = [int(e) for e in (args.checkpoint_epochs or ('0,1,2' if args.quick else '0,1,2,3,4,6,8')).split(',')]
    test_size = 1000 if args.quick else 10000

    torch.set_num_threads(2)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    started = time.time()

    train_images = read_idx('train-images-idx3-ubyte')
    train_labels = read_idx('train-labels-idx1-ubyte')
    test_images = read_idx('t10k-images-idx3-ubyte')
    test_labels = read_idx('t10k-labels-idx1-ubyte')
    subset = np.sort(np.random.RandomState(args.seed).permutation(train_images.shape[0])[:train_size])
    train_x, train_y = to_tensor(train_images[subset]), torch.from_numpy(train_labels[subset].astype(np.int64))
    test_x, test_y = to_tensor(test_images[:test_size]), torch.from_numpy(test_labels[:test_size].astype(np.int64))
    trainer = Trainer(args, train_x, train_y, test_x, test_y)
    os.makedirs(args.out, exist_ok=True)
    # A seed run inside a families folder (<families>/seed<N>) uses the folder's images.
    parent = seed_parent(args.out)
    image_files, image_indices = write_images(args.out, test_images, test_labels, write=parent is None)
    exporter = Exporter(args.out, to_tensor(test_images[image_indices]))
    print(f'{train_size} training images, {epochs} epochs per run, {test_size} test images; writing {args.out}', flush=True)

    LR = 0.05  # ResNets
    PLAIN_LR = 0.01  # plain CNNs (their large FC layer trains badly at 0.05: the teacher reached 83 % instead of 89 %)
    results = {}  # key -> model entry (without family-specific fields)

    def run(key, rel, name, ctor, epochs_=epochs, loss=ce_loss, lr=LR, optimizer='sgd', notes='', model=None, **train_kw):
        print(f'[{key}] {name}', flush=True)
        t0 = time.time()
        model = model if model is not None else build(args.seed, ctor)
        trainer.fit(model, epochs_, lr, loss, optimizer=optimizer, **train_kw)
        return finish(key, rel, name, model, time.time() - t0, notes)

    def finish(key, rel, name, model, seconds, notes, output='logits'):
        entry = {'name': name, 'file': rel, 'params': count_params(model), 'notes': notes}
        if output == 'logits':
            entry['testAccuracy'] = round(trainer.accuracy(model), 4)
        else:
            entry['testAccuracy'] = None
            entry['testMSE'] = round(trainer.mse(model), 5)
        entry['trainSeconds'] = round(seconds, 1)
        entry.update(exporter.export(model, rel, output))
        results[key] = entry
        print(f'    -> {rel}: ' + (f'test accuracy {entry["testAccuracy"]:.4f}' if output == 'logits' else f'test MSE {entry["testMSE"]:.5f}')
              + f', {entry["params"]} params, {seconds:.1f} s', flush=True)
        return model

    def std(lr=LR):
        return f'SGD (Nesterov momentum 0.9, weight decay 5e-4), lr {lr} cosine to 0, batch {BATCH}, {epochs} epochs on {train_size} images'

    # depth: ResNet-8/14/20 and plain CNNs with 2/4/6 conv layers.
    for n, depth in [(1, 8), (2, 14), (3, 20)]:
        run(f'resnet{depth}', f'depth-resnet/resnet{depth}.onnx', f'ResNet-{depth}', lambda n=n: ResNet(n),
            notes=f'{n} basic block(s) per stage, widths 8/16/32; {std()}')
    plains = {}
    for d in [2, 4, 6]:
        plains[d] = run(f'plain{d}', f'depth-plain/plain{d}.onnx', f'Plain-{d}', lambda d=d: PlainCNN((d // 2, d // 2), (16, 32)),
                        lr=PLAIN_LR, notes=f'{d} conv layers (16, then 32 channels), max-pool after each half, flatten, FC; {std(PLAIN_LR)}')

    # damage: ResNet-14 with the damage block between two residual blocks (0-based (stage, block) positions).
    for pos, (s, j), where in [(1, (1, 1), 'after stage1 (between the residual blocks stage1.1 and stage2.0)'),
                               (2, (2, 1), 'after stage2 (between the residual blocks stage2.1 and stage3.0)'),
                               (3, (3, 0), 'inside stage3 (between the residual blocks stage3.0 and stage3.1)')]:
        run(f'damage{pos}', f'damage/resnet14-damage{pos}.onnx', f'ResNet-14 + damage {where.split(" (")[0]}',
            lambda s=s, j=j: ResNet(2, damage_at=(s, j)),
            notes=f'ResNet-14 with 1x1 conv {8 * 2 ** (s - 1)}->8, ReLU, 1x1 conv 8->{8 * 2 ** (s - 1)}, ReLU (no skip) {where}; '
                  f'same seed (shared layers start from the same weights) and training as ResNet-14')

    # compression: Plain-6 pruned layerwise by magnitude, fine-tuned 1 epoch with the mask kept.
    base_state = {k: v.clone() for k, v in plains[6].state_dict().items()}
    for frac in [0.0, 0.5, 0.75, 0.9]:
        model = PlainCNN((3, 3), (16, 32))
        model.load_state_dict(base_state)
        masks = magnitude_masks(model, frac)
        pct = int(round(frac * 100))
        run(f'prune{pct}', f'compression/plain6-pruned{pct:02d}.onnx', f'Plain-6 pruned {pct} %', None, epochs_=1, lr=0.01,
            model=model, masks=masks, seed=args.seed + 1,
            notes=f'Plain-6 (depth-plain) with {pct} % of every conv/dense weight tensor zeroed by magnitude, then 1 epoch '
                  f'fine-tuning (SGD, lr 0.01 cosine) with the mask kept')
        kept = sum(int((w != 0).sum()) for w in prunable(model))
        total = sum(w.numel() for w in prunable(model))
        entry = results[f'prune{pct}']
        entry['totalParams'] = entry['params']
        entry['params'] = entry['params'] - (total - kept)  # nonzero parameters
        entry['prunableWeights'] = total
        entry['nonzeroPrunableWeights'] = kept
        entry['notes'] += f'; {kept} of {total} conv/dense weights nonzero; params = nonzero parameters'

    # distillation: a wider Plain-4 teacher; the narrow Plain-4 student with and without its soft targets.
    teacher = run('teacher', 'distillation/teacher-plain4-wide.onnx', 'Teacher Plain-4 (24/48)',
                  lambda: PlainCNN((2, 2), (24, 48)), lr=PLAIN_LR, notes=f'teacher: Plain-4 with 24, then 48 channels; {std(PLAIN_LR)}')
    with torch.no_grad():
        teacher.eval()
        teacher_logits = torch.cat([teacher(train_x[i:i + 1000]) for i in range(0, train_x.shape[0], 1000)])
    run('student', 'distillation/student-plain4.onnx', 'Student Plain-4 (8/16)', lambda: PlainCNN((2, 2), (8, 16)),
        lr=PLAIN_LR, notes=f'student: Plain-4 with 8, then 16 channels, trained on the labels; {std(PLAIN_LR)}')
    T, ALPHA = 4.0, 0.9
    run('student_kd', 'distillation/student-plain4-kd.onnx', 'Student Plain-4 (8/16) distilled', lambda: PlainCNN((2, 2), (8, 16)),
        loss=kd_loss(teacher_logits, T, ALPHA), lr=PLAIN_LR,
        notes=f'the same student (same initial weights and data order) trained on {ALPHA} * T^2 * KL(teacher soft targets, T={T:g}) '
              f'+ {1 - ALPHA:.1f} * cross-entropy; {std(PLAIN_LR)}')

    # epochs: checkpoints of one longer ResNet-8 run.
    total_epochs = max(ckpts)
    print(f'[epochs] ResNet-8, {total_epochs} epochs, checkpoints at {ckpts}', flush=True)
    model = build(args.seed, lambda: ResNet(1))
    t0 = time.time()
    paused = [0.0]

    def checkpoint(epoch):
        if epoch in ckpts:
            p0 = time.time()
            finish(f'epoch{epoch}', f'epochs/epoch-{epoch:02d}.onnx', f'ResNet-8 epoch {epoch}', model, time.time() - t0 - paused[0],
                   f'ResNet-8 after {epoch} of {total_epochs} epochs of one run (SGD as above, lr {LR} cosine to 0 over {total_epochs} epochs'
                   + (', i.e. the initial weights' if epoch == 0 else '') + ')')
            model.train()
            paused[0] += time.time() - p0

    trainer.fit(model, total_epochs, LR, ce_loss, on_epoch=checkpoint)

    # task: the ResNet-14 classifier (depth-resnet) and an auto-encoder with the same encoder.
    print('[autoencoder] ResNet-14 encoder + ConvTranspose decoder', flush=True)
    t0 = time.time()
    ae = build(args.seed, lambda: AutoEncoder(2))
    trainer.fit(ae, epochs, 2e-3, mse_loss, optimizer='adam')
    finish('ae', 'task/resnet14-autoencoder.onnx', 'ResNet-14 auto-encoder', ae, time.time() - t0,
           f'encoder: the ResNet-14 layers before global pooling (stem, stage1..3, 32x7x7); decoder: ConvTranspose 32->16 (2x2, stride 2), ReLU, '
           f'ConvTranspose 16->8 (2x2, stride 2), ReLU, conv 8->1, sigmoid; MSE on the pixels, Adam lr 2e-3 cosine to 0, batch {BATCH}, '
           f'{epochs} epochs on {train_size} images (same seed and data order as the classifier)', output='recon')

    exporter.rename_all()
    for entry in results.values():
        entry['sizeBytes'] = os.path.getsize(os.path.join(args.out, entry['file']))
    elapsed = time.time() - started
    t = os.times()
    cpu = t.user + t.system + t.children_user + t.children_system

    def model(key, x, **extra):
        e = dict(results[key])
        e['x'] = x
        e.update(extra)
        # Keep the schema's field order first.
        order = ['name', 'file', 'x', 'testAccuracy', 'params', 'notes']
        return {**{k: e[k] for k in order if k in e}, **{k: v for k, v in e.items() if k not in order}}

    R = ['stem', 'stage1', 'stage2', 'stage3', 'gap']
    families = [
        {'id': 'depth-resnet', 'finding': 'depth', 'title': 'Residual networks of increasing depth',
         'claim': 'Deeper networks show higher SID/RU (discard more) at the same stage', 'xLabel': 'depth',
         'layers': R, 'focusLayer': 'stage3',
         'models': [model('resnet8', 8), model('resnet14', 14), model('resnet20', 20)]},
        {'id': 'depth-plain', 'finding': 'depth', 'title': 'Plain CNNs of increasing depth',
         'claim': 'Deeper networks show higher SID/RU (discard more) at the same stage', 'xLabel': 'conv layers',
         'layers': ['conv1', 'stage1', 'stage2'], 'focusLayer': 'stage2',
         'models': [model('plain2', 2), model('plain4', 4), model('plain6', 6)]},
        {'id': 'damage', 'finding': 'damage', 'title': 'ResNet-14 with a damaging block inserted',
         'claim': 'An inserted 1x1 block without skip connection (N=8) raises the information discarding of later layers',
         'xLabel': 'insertion position (0 = none, 1 = after stage1, 2 = after stage2, 3 = inside stage3)',
         'layers': R, 'focusLayer': 'stage3',
         'note': 'The original ResNet-14 is the depth-resnet model. The damaged copies were trained from scratch with the same seed '
                 '(shared layers start from the same weights) and schedule; their inserted block is the layer "damage".',
         'models': [model('resnet14', 0, role='original'), model('damage1', 1, role='damaged'), model('damage2', 2, role='damaged'),
                    model('damage3', 3, role='damaged')]},
        {'id': 'compression', 'finding': 'compression', 'title': 'Plain-6 pruned by weight magnitude',
         'claim': 'Network compression lowers the SID of features, with little effect on RU and concentration',
         'xLabel': 'fraction of conv/dense weights pruned', 'layers': ['conv1', 'conv3', 'stage1', 'conv6', 'stage2'],
         'focusLayer': 'stage2',
         'note': 'Layerwise magnitude pruning of the depth-plain Plain-6; every model, the unpruned one included, was fine-tuned '
                 '1 epoch with its mask kept. params = nonzero parameters.',
         'models': [model('prune0', 0.0, role='uncompressed'), model('prune50', 0.5, role='pruned'),
                    model('prune75', 0.75, role='pruned'), model('prune90', 0.9, role='pruned')]},
        {'id': 'distillation', 'finding': 'distillation', 'title': 'A small plain CNN trained with and without distillation',
         'claim': 'Students learned with knowledge distillation discard less than the ordinarily learned student',
         'xLabel': 'distilled (0 = labels, 1 = teacher soft targets, 2 = teacher)',
         'layers': ['conv1', 'conv2', 'stage1', 'conv3', 'conv4', 'stage2'], 'focusLayer': 'stage2',
         'note': f'Teacher: Plain-4 with 24/48 channels; students: Plain-4 with 8/16 channels, the same initial weights and data '
                 f'order; the distilled one learned from the teacher\'s soft targets (T = {T:g}, weight {ALPHA}).',
         'models': [model('student', 0, role='no-kd'), model('student_kd', 1, role='distilled'), model('teacher', 2, role='teacher')]},
        {'id': 'epochs', 'finding': 'epochs', 'title': 'ResNet-8 over the epochs of one training run',
         'claim': 'Information discarding in high layers follows the information bottleneck over training',
         'xLabel': 'epoch', 'layers': R, 'focusLayer': 'stage3',
         'note': f'One ResNet-8 run of {total_epochs} epochs (cosine schedule over the whole run; the other families train '
                 f'{epochs} epochs); epoch 0 is the initial weights (the same as the depth-resnet ResNet-8\'s).',
         'models': [model(f'epoch{e}', e) for e in ckpts]},
        {'id': 'task', 'finding': 'task', 'title': 'Classifier and auto-encoder with the same encoder',
         'claim': 'Image classification and image reconstruction have similar SID values',
         'xLabel': 'task (0 = classification, 1 = reconstruction)', 'layers': ['stem', 'stage1', 'stage2', 'stage3'],
         'focusLayer': 'stage3',
         'note': 'The classifier is the depth-resnet ResNet-14; the auto-encoder has its encoder (same seed, same initial encoder '
                 'weights) and a ConvTranspose decoder. The auto-encoder has no test accuracy (testMSE instead).',
         'models': [model('resnet14', 0, role='classifier'), model('ae', 1, role='autoencoder')]},
    ]
    manifest = {
        'dataset': 'Fashion-MNIST (Debian dataset-fashion-mnist)', 'seed': args.seed, 'script': 'scripts/families/train_families.py',
        'images': 'images' if parent is None else '../images', 'boxes': 'images/boxes.json' if parent is None else '../images/boxes.json',
        'trainImages': '../sample/train' if parent is None else '../../sample/train',
        'imageFiles': image_files, 'imageTestIndices': image_indices,
        'input': 'NCHW float [N,1,28,28], pixel/255 in [0,1]; input range 0,1',
        'training': {'trainImages': train_size, 'epochs': epochs, 'testImages': test_size, 'batch': BATCH,
                     'totalSeconds': round(elapsed, 1), 'cpuSeconds': round(cpu, 1), 'torch': torch.__version__, 'threads': torch.get_num_threads(),
                     'quick': bool(args.quick)},
        'families': families,
    }
    with open(os.path.join(args.out, 'manifest.json'), 'w') as f:
        f.write(dumps(manifest) + '\n')
    if parent is None:
        write_readme(args.out, manifest)
    total = sum(e['sizeBytes'] for e in results.values())
    print(f'done in {elapsed:.0f} s ({cpu:.0f} CPU seconds); {len(results)} ONNX files, {total / 1e6:.2f} MB', flush=True)
    if parent is not None:
        merge_seeds(parent)


def seed_parent(out):
    """The families folder that `out` is the seed folder of (<families>/seed<N> beside a manifest.json), else None."""
    out = os.path.abspath(out)
    base = os.path.basename(out)
    parent = os.path.dirname(out)
    if base.startswith('seed') and base[4:].isdigit() and os.path.exists(os.path.join(parent, 'manifest.json')):
        return parent
    return None


def merge_seeds(root):
    """Seed groups in <root>/manifest.json: every model gets its seed and its variant group (`group`: the file path
    without .onnx, the same for one variant in every seed run; the damage and task families reuse the depth-resnet
    ResNet-14, so they share its group), and `runs`: the same variant trained with the other seeds, read from
    <root>/seed<N>/manifest.json (files relative to <root>). Seed 1's files and fields are left as they are."""
    path = os.path.join(root, 'manifest.json')
    with open(path) as f:
        manifest = json.load(f)
    subs = []
    for name in sorted(os.listdir(root), key=lambda n: (len(n), n)):
        sub = os.path.join(root, name, 'manifest.json')
        if name.startswith('seed') and name[4:].isdigit() and os.path.exists(sub):
            with open(sub) as f:
                subs.append((name, json.load(f)))
    seeds = [manifest['seed']]
    for fam in manifest['families']:
        for m in fam['models']:
            m['seed'] = manifest['seed']
            m['group'] = m['file'][:-5] if m['file'].endswith('.onnx') else m['file']
            m['runs'] = []
    for name, sub in subs:
        if sub['seed'] in seeds:
            raise SystemExit(f'{root}/{name}/manifest.json: seed {sub["seed"]} appears twice; remove one of the seed folders')
        seeds.append(sub['seed'])
        fams = {f['id']: f for f in sub['families']}
        for fam in manifest['families']:
            other = {m['file']: m for m in fams.get(fam['id'], {'models': []})['models']}
            for m in fam['models']:
                o = other.get(m['file'])
                if o is None:
                    raise SystemExit(f'{root}/{name}/manifest.json has no {m["file"]} in family {fam["id"]}; rerun that seed')
                run = {'seed': sub['seed'], 'file': f'{name}/{o["file"]}', 'testAccuracy': o.get('testAccuracy'), 'params': o['params'],
                       'sizeBytes': o['sizeBytes'], 'trainSeconds': o.get('trainSeconds')}
                if o.get('testMSE') is not None:
                    run['testMSE'] = o['testMSE']
                m['runs'].append(run)
    manifest['seeds'] = seeds
    with open(path, 'w') as f:
        f.write(dumps(manifest) + '\n')
    write_readme(root, manifest)
    print(f'{path}: seed groups of seeds {seeds}', flush=True)


def dumps(value, indent=0):
    """JSON with one line per model and per number array (readable diffs, not one number per line)."""
    pad = '  ' * indent
    if isinstance(value, dict):
        if indent >= 3 or all(not isinstance(v, (dict, list)) for v in value.values()) and len(json.dumps(value)) < 110:
            return json.dumps(value, separators=(', ', ': '))
        items = [f'{pad}  {json.dumps(k)}: {dumps(v, indent + 1)}' for k, v in value.items()]
        return '{\n' + ',\n'.join(items) + f'\n{pad}}}'
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return json.dumps(value, separators=(', ', ': '))
        items = [f'{pad}  {dumps(v, indent + 1)}' for v in value]
        return '[\n' + ',\n'.join(items) + f'\n{pad}]'
    return json.dumps(value)


def write_readme(out, manifest):
    """README.md from manifest.json alone (so --readme-only can rewrite it without training)."""
    t = manifest['training']
    files = {}
    for fam in manifest['families']:
        for m in fam['models']:
            files[m['file']] = m['sizeBytes']
    elapsed, cpu = t['totalSeconds'], t['cpuSeconds']
    lines = [
        '# Model families on Fashion-MNIST',
        '',
        'Small networks for reproducing the comparisons of the paper\'s Sec. 4 (depth, architectural damage, compression,',
        'distillation, training epochs, task) on Fashion-MNIST. Made by `scripts/families/train_families.py`; described for',
        'scripts by `manifest.json` (families, the layers to compare, x values, test accuracies, and PyTorch\'s outputs on the',
        'eight images of `images/`, which `test/families.test.ts` compares the engine with). This file is generated by the script.',
        '',
        '- Input: NCHW float `[N, 1, 28, 28]`, pixel / 255 in [0, 1], no other normalisation (input range `0,1`); dynamic batch.',
        '- ONNX opset 13 from `torch.onnx.export` (BatchNorm folded into the convolutions), node outputs renamed by',
        '  `scripts/families/rename-onnx.ts`: block outputs get the shared names (`stem`, `stage1`..`stage3`, `gap`, `logits` in',
        '  the ResNets; `conv1`..`convN`, `stage1`, `stage2` (the max-pool outputs), `logits` in the plain CNNs; `damage` for the',
        '  inserted block; `dec1`, `dec2`, `recon` in the auto-encoder); the other outputs keep torch\'s scope as a dotted name',
        '  (`stage1.0.conv1.Conv`).',
        f'- Training data: a seeded subset of {t["trainImages"]} of the 60,000 training images, no augmentation. Test accuracy on',
        f'  the first {t["testImages"]} test images (all of them unless `--quick`), re-checked on the ONNX files with onnxruntime.',
        f'- Every run: {t["epochs"]} epochs, batch {t["batch"]}, SGD with Nesterov momentum 0.9, weight decay 5e-4, lr 0.05 (ResNets)',
        '  or 0.01 (plain CNNs) annealed to 0 by a cosine; exceptions in the table (pruning fine-tuning, the epochs run, the',
        f'  auto-encoder). One seed (`--seed {manifest["seed"]}`) for the initial weights (set right before each model is built, so',
        '  variants share the initial weights of their common layers), the training subset and the data order.',
        '- `images/`: the first test image of each of eight classes (test-set index: '
        + ', '.join(f'`{f}` {i}' for f, i in zip(manifest['imageFiles'], manifest['imageTestIndices']))
        + '); the first six are the images of `media/sample/images`. `images/boxes.json`: the tight box of the pixels > 0',
        '  of each image, for concentration.',
        '',
        '## Regenerate',
        '',
        '```sh',
        f'/usr/bin/python3 scripts/families/train_families.py --out media/families --seed {manifest["seed"]}',
        'node --import tsx --test test/families.test.ts',
        '```',
        '',
        'Needs Debian\'s `python3-torch` (1.13), `python3-numpy`, `python3-pil` and `dataset-fashion-mnist`, and node with this',
        'repository\'s `node_modules` (the renaming step). `--quick` is a smoke run (512 images, 1 epoch) into',
        '`out/families-quick`; `--readme-only` rewrites this file from `manifest.json`. The same seed gave the same',
        'accuracies in repeated runs on one machine; other CPUs or library builds may differ in the last digits.',
        '',
        f'Time: the run that made these files took **{elapsed / 60:.1f} min** wall clock ({cpu / 60:.1f} CPU-minutes; torch',
        f'{t["torch"]}, {t["threads"]} threads) on an otherwise idle 2-core machine; the table gives each model\'s training time',
        '(wall clock, without evaluation and export; for the epoch checkpoints the cumulative time of the run). Another',
        'full run of the same script on the same machine, while other jobs loaded it heavily (load average 4 to 9), took',
        '50 min and wrote byte-identical ONNX files.',
        '',
        '## Models',
        '',
        '| family | file | x | params | size | test accuracy | train s | how it was made |',
        '|---|---|---|---|---|---|---|---|',
    ]
    for fam in manifest['families']:
        for m in fam['models']:
            acc = f'{m["testAccuracy"] * 100:.2f} %' if m.get('testAccuracy') is not None else f'MSE {m.get("testMSE")}'
            role = f' ({m["role"]})' if m.get('role') else ''
            lines.append(f'| {fam["id"]} | `{m["file"]}` | {m["x"]:g} | {m["params"]:,} | {m["sizeBytes"] / 1024:.0f} KiB | {acc} | '
                         f'{m["trainSeconds"]:.0f} | {m["name"]}{role}: {m["notes"]} |')
    lines += ['', f'{len(files)} distinct files, {sum(files.values()) / 1e6:.2f} MB in total (files shared by two families are listed '
              'twice). For the compression family, params counts the nonzero parameters.', '', '## Families', '']
    for fam in manifest['families']:
        lines.append(f'- **{fam["id"]}** ({fam["finding"]}): {fam["title"]}. Claim: {fam["claim"]}. Layers compared: '
                     + ', '.join(f'`{l}`' for l in fam['layers']) + '. ' + fam.get('note', ''))
    seeds = manifest.get('seeds', [manifest['seed']])
    if len(seeds) > 1:
        lines += ['', '## Seeds', '',
                  f'Every model was also trained with seeds {", ".join(str(s) for s in seeds[1:])} (another training subset, initialisation '
                  'and data order; everything else the same), into `seed<N>/` with the same relative paths and its own `manifest.json` '
                  '(the images are this folder\'s). In `manifest.json` every model has its `seed`, its variant `group` (the file path '
                  'without `.onnx`: one variant, whatever the seed) and its other seeds\' `runs`. Made by',
                  '', '```sh']
        lines += [f'nice -n 19 /usr/bin/python3 scripts/families/train_families.py --seed {s}   # -> media/families/seed{s}, merged here'
                  for s in seeds[1:]]
        lines += ['/usr/bin/python3 scripts/families/train_families.py --merge-seeds   # only re-merge the seed folders']
        lines += [f'FAMILIES_DIR=media/families/seed{s} node --import tsx --test test/families.test.ts   # check seed {s}\'s files against PyTorch'
                  for s in seeds[1:]]
        lines += ['```', '', 'Test accuracy per variant group and seed (`npm run repro -- --seeds N` draws the verdicts across these runs):', '',
                  '| group | ' + ' | '.join(f'seed {s}' for s in seeds) + ' |', '|---|' + '---|' * len(seeds)]
        done = set()
        for fam in manifest['families']:
            for m in fam['models']:
                if m['group'] in done:
                    continue
                done.add(m['group'])
                cells = []
                for r in [m] + m.get('runs', []):
                    acc = f'{r["testAccuracy"] * 100:.2f} %' if r.get('testAccuracy') is not None else f'MSE {r.get("testMSE")}'
                    cells.append(acc)
                lines.append(f'| `{m["group"]}` | ' + ' | '.join(cells) + ' |')
    with open(os.path.join(out, 'README.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')


if __name__ == '__main__':
    main()
