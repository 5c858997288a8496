"""Splits a Keras 2 model .h5 (model.save) into the pair a Keras user writes with model.to_json() and
model.save_weights(): NAME.json (the model config, keras_version and backend at the top, as to_json writes it) and
the weights file (the "model_weights" group's layers at the root, with layer_names, as save_weights writes it).
For test/keras-json.test.ts; needs h5py (Debian python3-h5py).

usage: /usr/bin/python3 scripts/test-data/split-keras-h5.py MODEL.h5 OUT.json OUT_WEIGHTS.h5 [keras3]
With "keras3" the weights are written as Keras 3's model.save_weights("x.weights.h5") does: layers/<layer>/vars/<i>.
"""
import json, sys

import h5py

src, out_json, out_weights = sys.argv[1:4]
keras3 = sys.argv[4:5] == ["keras3"]


def text(v):
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


with h5py.File(src, "r") as f:
    config = json.loads(text(f.attrs["model_config"]))
    keras_version = text(f.attrs.get("keras_version", b"2.2.4"))
    backend = text(f.attrs.get("backend", b"tensorflow"))
    with open(out_json, "w") as j:
        json.dump({"class_name": config["class_name"], "config": config["config"], "keras_version": keras_version, "backend": backend}, j)
    weights = f["model_weights"]
    if keras3:
        with h5py.File(out_weights, "w") as w:
            layers = w.create_group("layers")
            for name in [text(n) for n in weights.attrs["layer_names"]]:
                g = weights[name]
                names = [text(n) for n in g.attrs.get("weight_names", [])]
                if not names:
                    continue
                var = layers.create_group(name).create_group("vars")
                for i, wn in enumerate(names):
                    var.create_dataset(str(i), data=g[wn][()])
        print("wrote", out_json, out_weights)
        sys.exit(0)
    with h5py.File(out_weights, "w") as w:
        for k, v in weights.attrs.items():
            w.attrs[k] = v
        for name in weights:
            weights.copy(weights[name], w, name=name)
print("wrote", out_json, out_weights)
