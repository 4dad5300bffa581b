"""Score a feature CSV with an ONNX model in onnxruntime.

The reference the plugin's tract runtime is checked against. The CSV is
what features.py writes (a header of feature names, one row per flow); with
--spec the header must list the spec's features in its order, and the
output and column come from the spec.

    python scripts/model/score.py --spec rulesets/ml-score/model.toml \
        --model rulesets/ml-score/flows.onnx features.csv > scores.txt

Prints one score per row, with 9 significant digits.
"""

from __future__ import annotations

import argparse
import csv
import sys

import numpy as np
import onnxruntime as ort

import features as catalogue


def read_csv(path) -> tuple[list[str], np.ndarray]:
    with (sys.stdin if path == "-" else open(path, newline="")) as f:
        rows = list(csv.reader(f))
    if not rows:
        raise SystemExit(f"{path}: empty, expected a header of feature names")
    header, body = rows[0], rows[1:]
    matrix = np.array([[float(v) for v in row] for row in body], dtype=np.float32)
    return header, matrix.reshape(len(body), len(header))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("csv", help="feature CSV (- for stdin)")
    p.add_argument("--model", required=True, help="ONNX model")
    p.add_argument("--spec", help="model spec; gives features, output and column")
    p.add_argument("--output", default="probabilities")
    p.add_argument("--column", type=int, default=1)
    a = p.parse_args()
    header, matrix = read_csv(a.csv)
    output, column = a.output, a.column
    if a.spec:
        spec = catalogue.read_spec(a.spec)
        if header != spec["features"]:
            raise SystemExit(f"{a.csv}: columns {header} differ from the spec's features")
        output, column = spec.get("output", output), spec.get("column", column)
    session = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    (scores,) = session.run([output], {name: matrix})
    scores = scores[:, column] if scores.ndim == 2 else scores
    sys.stdout.write("".join(f"{s:.9g}\n" for s in scores))


if __name__ == "__main__":
    main()
