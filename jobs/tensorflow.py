"""`tensorflow`: a Keras MLP on a Parquet dataset, trained on Ray Train's TensorFlow workers.

The workers form one `MultiWorkerMirroredStrategy` and train in a custom loop: Keras 3's
`model.fit` fails under that strategy (tf-keras, which would make it work, cannot be installed
beside `tensorflow-cpu` without replacing it). Inputs are standardised inside the model and
regression targets are scaled back by its last layer, so the SavedModel reads raw columns and
answers in the target's own units.
"""

from __future__ import annotations

import os
from typing import Any

from fabric import runtime
from jobs import _ray, _tabular, _train
from jobs._network import Network, standardise

NAME = "tensorflow"
MODEL_FOLDER = "model"
# TensorFlow's C++ log level: warnings and errors, not its INFO lines on every collective.
TF_LOG_LEVEL = "1"


class Params(Network):
    """The network's parameters, as the torch templates take them."""


def _build(config: dict[str, Any]) -> Any:
    """The MLP: standardised inputs, ReLU layers, one logit per class or one number."""
    import keras
    import numpy as np

    layers: list[Any] = [
        keras.Input((len(config["features"]),)),
        keras.layers.Normalization(mean=config["mean"], variance=np.square(config["std"])),
    ]
    layers += [keras.layers.Dense(width, activation="relu") for width in config["hidden_sizes"]]
    if config["classes"]:
        layers.append(keras.layers.Dense(len(config["classes"])))
    else:
        scale, offset = config["target_scale"], config["target_mean"]
        layers += [keras.layers.Dense(1), keras.layers.Rescaling(scale=scale, offset=offset)]
    return keras.Sequential(layers)


def train_loop(config: dict[str, Any]) -> None:
    """On each worker: its shard of the rows, one replica of the model, gradients all-reduced
    each step; rank 0 exports the SavedModel at the end."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    import keras
    import numpy as np
    import ray.train
    import tensorflow as tf

    tf.get_logger().setLevel("WARNING")
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    keras.utils.set_random_seed(config["seed"])
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    frame = _train.shard("train")
    x = frame[config["features"]].to_numpy(dtype=np.float32)
    # Keras has no type hints: pyright takes the default's type (a str) for `reduction`.
    if config["classes"]:
        y = _train.label_index(frame[config["target"]], config["classes"]).to_numpy(np.int64)
        crossentropy = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True,
            reduction=None,  # pyright: ignore[reportArgumentType]
        )

        def per_row(truth: Any, predicted: Any) -> Any:
            return crossentropy(truth, predicted)

    else:
        y = frame[config["target"]].to_numpy(dtype=np.float32).reshape(-1, 1)
        squared = keras.losses.MeanSquaredError(reduction=None)  # pyright: ignore[reportArgumentType]
        # In units of the target's variance, so the loss reads the same at any scale.
        variance = config["target_scale"] ** 2

        def per_row(truth: Any, predicted: Any) -> Any:
            return squared(truth, predicted) / variance

    with strategy.scope():
        model = _build(config)
        optimizer = keras.optimizers.Adam(config["learning_rate"])

    # Plain graph tracing: the step has no Python control flow for AutoGraph to convert.
    @tf.function(autograph=False)
    def step(inputs: Any, truth: Any, rows: Any) -> Any:
        def replica(inputs: Any, truth: Any) -> Any:
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(per_row(truth, model(inputs, training=True))) / rows
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
            return loss

        losses = strategy.run(replica, args=(inputs, truth))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    # Train splits the rows evenly, so every worker takes as many steps: each is a collective.
    shuffle = np.random.default_rng(config["seed"] + rank)
    batch = config["batch_size"]
    for epoch in range(1, config["epochs"] + 1):
        order = shuffle.permutation(len(x))
        total, steps = 0.0, 0
        for start in range(0, len(x), batch):
            rows = order[start : start + batch]
            total += float(step(x[rows], y[rows], tf.constant(len(rows) * world, tf.float32)))
            steps += 1
        ray.train.report({"epoch": epoch, "loss": total / max(steps, 1), "workers": world})
    if rank == 0:
        model.export(config["model_dir"], verbose=False)


def _device_note() -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if runtime.workers().use_gpu and not gpus:
        print(
            f"{NAME}: GPUs were granted but this TensorFlow sees none (tensorflow-cpu?); "
            "the workers train on CPU",
            flush=True,
        )


def run(params: Params) -> dict[str, Any]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)
    import numpy as np
    import tensorflow as tf
    from ray.train.tensorflow import TensorflowTrainer

    data = _train.load_tabular(NAME, params)
    model_dir = runtime.run_dir() / MODEL_FOLDER
    config = {**standardise(NAME, params, data), "model_dir": str(model_dir)}
    classes = config["classes"]
    _device_note()
    _ray.connect()
    TensorflowTrainer(
        train_loop,
        train_loop_config=config,
        scaling_config=_train.scaling(NAME),
        run_config=_train.run_config(NAME),
        datasets={"train": data.datasets()["train"]},
    ).fit()

    serve = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    matrix = tf.constant(data.validation[data.features].to_numpy(dtype=np.float32))
    output = next(iter(serve(matrix).values())).numpy()
    predicted = np.asarray(classes)[output.argmax(axis=1)] if classes else output.reshape(-1)
    scores = _tabular.scores(params.task, data.validation[params.target], predicted)
    runtime.report_metrics(step=params.epochs, **scores)
    return _train.tabular_outputs(data, str(model_dir), "tensorflow", scores, classes)


TEMPLATE = runtime.Template(
    name=NAME,
    group=_train.GROUP,
    description=(
        "Train a multilayer perceptron (Keras) on a Parquet dataset's numeric columns with "
        "TensorFlow's MultiWorkerMirroredStrategy on Ray Train workers, evaluate it on a "
        "held-out validation split, and save it as a SavedModel folder."
    ),
    params=Params,
    run=run,
    resources=_train.DRIVER_RESOURCES,
    outputs={
        **_train.TABULAR_OUTPUTS,
        "model_uri": "the SavedModel folder (signature serving_default: rows in, scores out)",
        "classes": "the class of each output column (classification)",
    },
    workers=2,
    worker_resources={"cpu": 1.0},
)

if __name__ == "__main__":
    TEMPLATE.main()
