"""Keras version of the bundled sample model (media/sample/fashion-cnn).

This file is a demo document for the editor integration: hover a layer name
such as "block2_conv" below and infodiscard shows that layer's result from the
last analysis. It mirrors scripts/train-sample-model.ts (which is what actually
produced the bundled weights, with TensorFlow.js) and is not needed to run the
demo. If you do run it (needs TensorFlow 2.x), you get the same architecture,
layer names and training recipe (not bit-identical weights: the subset and
shuffling come from a different RNG). The saved Keras model can be converted with
`tensorflowjs_converter --input_format=keras fashion_cnn.h5 out/`.

Data: Fashion-MNIST, (c) 2017 Zalando SE, MIT licence.
"""

import gzip
import os

import numpy as np
from tensorflow import keras
from tensorflow.keras import layers

SEED = 20240611
TRAIN_SUBSET = 20000
EPOCHS = 3
BATCH_SIZE = 64
DATA_DIR = os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["tshirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle-boot"]


def load_idx(name, offset):
    with gzip.open(os.path.join(DATA_DIR, name + ".gz"), "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def load_split(prefix):
    images = load_idx(prefix + "-images-idx3-ubyte", 16).reshape(-1, 28, 28, 1)
    labels = load_idx(prefix + "-labels-idx1-ubyte", 8)
    return images.astype("float32") / 255.0, labels


def build_model():
    init = keras.initializers.HeNormal
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(8, 3, padding="same", activation="relu",
                          kernel_initializer=init(SEED + 1), name="block1_conv"),
            layers.MaxPooling2D(2, name="block1_pool"),
            layers.Conv2D(16, 3, padding="same", activation="relu",
                          kernel_initializer=init(SEED + 2), name="block2_conv"),
            layers.MaxPooling2D(2, name="block2_pool"),
            layers.Conv2D(32, 3, padding="same", activation="relu",
                          kernel_initializer=init(SEED + 3), name="block3_conv"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(10, activation="softmax",
                         kernel_initializer=init(SEED + 4), name="predictions"),
        ],
        name="fashion_cnn",
    )


def main():
    keras.utils.set_random_seed(SEED)
    x_train, y_train = load_split("train")
    x_test, y_test = load_split("t10k")
    rng = np.random.default_rng(SEED)
    subset = rng.permutation(len(x_train))[:TRAIN_SUBSET]
    x_train, y_train = x_train[subset], y_train[subset]

    model = build_model()
    # Adam with the learning rate decayed linearly per batch, 0.01 -> 0.0005.
    steps = EPOCHS * -(-TRAIN_SUBSET // BATCH_SIZE)
    schedule = keras.optimizers.schedules.PolynomialDecay(
        0.01, decay_steps=steps, end_learning_rate=0.0005, power=1.0)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()

    # The "early" checkpoint (media/sample/fashion-cnn-early) is the same run
    # after its first epoch.
    early = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: epoch == 0 and model.save("fashion_cnn_early.h5"))
    model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=EPOCHS,
              shuffle=True, callbacks=[early])

    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {acc:.4f}")
    model.save("fashion_cnn.h5")


if __name__ == "__main__":
    main()
