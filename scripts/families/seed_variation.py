#!/usr/bin/python3
"""How much SID moves between two training runs of the same architecture: retrains ResNet-14 and Plain-6 exactly as
train_families.py does (same data size, epochs, schedule) but with another seed (another training subset,
initialisation and data order), exports them to ONNX with the same layer names, for the comparison in
docs/reproduction.md (the run-to-run spread that differences between separately trained family models must exceed).

    /usr/bin/python3 scripts/families/seed_variation.py --seed 2 --out out/families-seed2
    node dist/cli.js analyze out/families-seed2/depth-resnet/resnet14.onnx --images media/families/images \\
        --layers stem,stage1,stage2,stage3,gap --metrics sid,concentration --boxes media/families/images/boxes.json \\
        --seed 1 --workers auto --out out/families-seed2/resnet14.report.json
    (and depth-plain/plain6.onnx with --layers conv1,stage1,stage2): the arguments npm run repro uses, so the
    reports compare image by image with out/repro/depth-resnet/resnet-14.report.json and depth-plain/plain-6.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_families as T  # noqa: E402  (the families' models, data, trainer and exporter)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--seed', type=int, default=2)
    ap.add_argument('--out', default=os.path.join(T.REPO, 'out', 'families-seed2'))
    args = ap.parse_args()
    args.quick = False
    torch.set_num_threads(2)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    train_images = T.read_idx('train-images-idx3-ubyte')
    train_labels = T.read_idx('train-labels-idx1-ubyte')
    test_images = T.read_idx('t10k-images-idx3-ubyte')
    test_labels = T.read_idx('t10k-labels-idx1-ubyte')
    subset = np.sort(np.random.RandomState(args.seed).permutation(train_images.shape[0])[:16000])
    train_x, train_y = T.to_tensor(train_images[subset]), torch.from_numpy(train_labels[subset].astype(np.int64))
    test_x, test_y = T.to_tensor(test_images), torch.from_numpy(test_labels.astype(np.int64))
    trainer = T.Trainer(args, train_x, train_y, test_x, test_y)
    os.makedirs(args.out, exist_ok=True)
    _, indices = T.write_images(args.out, test_images, test_labels)
    exporter = T.Exporter(args.out, T.to_tensor(test_images[indices]))
    for rel, ctor, lr in [('depth-resnet/resnet14.onnx', lambda: T.ResNet(2), 0.05),
                          ('depth-plain/plain6.onnx', lambda: T.PlainCNN((3, 3), (16, 32)), 0.01)]:
        t0 = time.time()
        model = T.build(args.seed, ctor)
        trainer.fit(model, 4, lr, T.ce_loss)
        exporter.export(model, rel)
        print(f'{rel}: seed {args.seed}, test accuracy {trainer.accuracy(model):.4f}, {time.time() - t0:.1f} s', flush=True)
    exporter.rename_all()


if __name__ == '__main__':
    main()
