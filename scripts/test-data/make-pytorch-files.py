"""PyTorch files for test/pytorch.test.ts, made with Debian's python3-torch (CPU, deterministic).

usage: /usr/bin/python3 scripts/test-data/make-pytorch-files.py OUT_DIR

Writes into OUT_DIR:
  tiny_cnn.py           the model class (the snippet test imports it)
  scripted.pt           TorchScript (torch.jit.trace) with the input shape recorded (_extra_files input_shape)
  scripted_noshape.pt   the same without a recorded shape
  weights.pth           the state_dict (torch.save(model.state_dict()))
  checkpoint.pth        a training checkpoint dict {"epoch", "model_state_dict"}
  pickled.pt            the whole module (torch.save(model)): needs its class to load
  reference.json        the input (1x3x16x16, NCHW) and the model's output for it
"""
import json, os, sys

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
sys.path.insert(0, out)

with open(os.path.join(out, "tiny_cnn.py"), "w") as f:
    f.write('''import torch
from torch import nn


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.fc = nn.Linear(6 * 8 * 8, 5)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(x, 1))
''')

from tiny_cnn import TinyCNN  # noqa: E402

torch.manual_seed(0)
model = TinyCNN()
with torch.no_grad():  # non-trivial batch-norm statistics
    model.bn.running_mean.uniform_(-0.2, 0.2)
    model.bn.running_var.uniform_(0.5, 1.5)
model.eval()
x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
with torch.no_grad():
    y = model(x)
traced = torch.jit.trace(model, x)
torch.jit.save(traced, os.path.join(out, "scripted.pt"), _extra_files={"input_shape": "1,3,16,16"})
torch.jit.save(traced, os.path.join(out, "scripted_noshape.pt"))
torch.save(model.state_dict(), os.path.join(out, "weights.pth"))
torch.save({"epoch": 3, "model_state_dict": model.state_dict()}, os.path.join(out, "checkpoint.pth"))
torch.save(model, os.path.join(out, "pickled.pt"))
with open(os.path.join(out, "reference.json"), "w") as f:
    json.dump({"input": x.flatten().tolist(), "inputShape": list(x.shape), "output": y.flatten().tolist(), "torch": torch.__version__}, f)
print("wrote", out)
