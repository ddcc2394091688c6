"""The wild corpus: graphs written the way their original authors wrote them.

Each module here is one graph of the kinds users bring (TF1 code with `tf.compat.v1`, frozen
with `graph_util.convert_variables_to_constants`, sometimes rewritten afterwards) and defines:

* `build()`: called inside a fresh `tf.Graph` in TF1 style; creates the graph and returns
  `(inputs, outputs)`, lists of tensor names (`"input:0"`). Variables are then set to seeded
  random values (BatchNorm statistics included) and the graph is frozen.
* `feeds(rng)`: the arrays to run both the frozen graph and the generated model on, in the
  order of `inputs`, with a batch other than any the graph was traced with where it has one.
* Optional: `SETS` ({placeholder: value} given as `--set NAME=VALUE`), `TENSORFLOW_ONLY` (the
  op types allowed on the TensorFlow-only path; default none), `rewrite(graph_def)` (applied
  after freezing: optimize_for_inference, weight quantization, ...), `CONTROL_FLOW_V1 = True`
  (build with TF1 while frames and TensorArrays, as TF1 wrote them).

tests/test_wild.py converts each with tensor names only (no shapes), builds, loads, runs and
compares with TensorFlow running the frozen graph.
"""
