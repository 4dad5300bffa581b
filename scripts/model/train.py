"""Train a flow model for ml-score's model slot and export it to ONNX.

Reads a labelled Suricata EVE file (a flow is malicious when an alert event
shares its flow_id), computes the catalogue features of features.py, trains
a scikit-learn model with fixed seeds, and writes the ONNX model and its
spec (a ruleset with a [model] section) for the plugin.

    python scripts/model/train.py --eve test6-malicious.suricata.json \
        --out-model rulesets/ml-score/flows.onnx --out-spec rulesets/ml-score/model.toml

--kind mlp (the default model): standardisation folded into a 16-unit MLP,
so the ONNX graph holds only MatMul/Add/Relu/Sigmoid (tract has no
ai.onnx.ml Scaler). --kind forest: a small random forest
(TreeEnsembleClassifier), used by the plugin's hot-swap test.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys

import numpy as np
import onnx
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import features as catalogue  # noqa: E402

# The default model's inputs. Direction is left out: it depends on the
# engine's institution prefixes, which the training data does not have.
DEFAULT_FEATURES = [
    "log_duration", "log_src_bytes", "log_dst_bytes", "log_src_pkts", "log_dst_pkts",
    "src_bytes_per_pkt", "dst_port_well_known", "proto_tcp", "proto_udp", "proto_icmp",
    "service_none", "service_dns", "service_http", "service_tls", "service_other",
    "state_sf", "state_s0", "state_rej", "state_reset", "state_other",
    "log_src_flows", "src_distinct_dsts", "src_distinct_dst_ports",
]
SEED = 0
OPSETS = {"": 17, "ai.onnx.ml": 3}


def train_mlp(x: np.ndarray, y: np.ndarray) -> MLPClassifier:
    mean = x.astype(np.float64).mean(axis=0)
    std = x.astype(np.float64).std(axis=0)
    std[std == 0] = 1.0
    mlp = MLPClassifier(hidden_layer_sizes=(16,), alpha=1e-3, max_iter=2000,
                        random_state=SEED)
    mlp.fit((x - mean) / std, y)
    # Fold (x - mean) / std into the first layer: W' = W / std, b' = b - (mean / std) W.
    w, b = mlp.coefs_[0], mlp.intercepts_[0]
    mlp.coefs_[0] = w / std[:, None]
    mlp.intercepts_[0] = b - (mean / std) @ w
    return mlp


def train_forest(x: np.ndarray, y: np.ndarray) -> RandomForestClassifier:
    forest = RandomForestClassifier(n_estimators=8, max_depth=5, random_state=SEED)
    forest.fit(x, y)
    return forest


def cross_validated_threshold(train, x: np.ndarray, y: np.ndarray, max_fpr: float) -> float:
    """The lowest score that flags at most max_fpr of the benign flows, each
    scored by a model that did not see it (5 folds of the training split):
    held-out data stays out of the choice."""
    scores = np.empty(len(y))
    for fit, held in StratifiedKFold(5, shuffle=True, random_state=SEED).split(x, y):
        scores[held] = train(x[fit], y[fit]).predict_proba(x[held])[:, 1]
    benign = np.sort(scores[y == 0].astype(np.float32))
    allowed = int(np.floor(max_fpr * len(benign)))
    # Flagged is score >= threshold: just above the highest benign score
    # that must stay unflagged.
    return float(np.nextafter(benign[len(benign) - allowed - 1], np.float32(np.inf)))


def only_output(model: onnx.ModelProto, name: str) -> onnx.ModelProto:
    """Keeps one output and the nodes it needs (the label branch of skl2onnx
    classifiers uses operators tract lacks, such as ArrayFeatureExtractor)."""
    graph = model.graph
    needed, keep = {name}, []
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    keep.reverse()
    outputs = [o for o in graph.output if o.name == name]
    del graph.node[:]
    graph.node.extend(keep)
    del graph.output[:]
    graph.output.extend(outputs)
    used = {i for n in keep for i in n.input}
    inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    onnx.checker.check_model(model)
    return model


def spec_text(args, features, baseline, digest) -> str:
    quoted = ",\n".join(f'    "{f}"' for f in features)
    base = ", ".join(repr(float(v)) for v in baseline)
    return f"""# ml-score model slot: the default flow model. Written by
# scripts/model/train.py (see scripts/model/README.md); retrain rather than edit.
# Training data: {os.path.basename(args.eve)}, {args.summary}
# Model file sha256: {digest}

[model]
name = "{args.name}"
version = "{args.version}"
file = "{os.path.basename(args.out_model)}"
output = "probabilities"
column = 1
threshold = {args.threshold}
rule_id = "model-flows"
window_secs = {args.window_secs}
findings_per_source = 1
max_hosts = 200000
features = [
{quoted},
]
# Training medians: the evidence names the features whose replacement by
# these values lowers a flagged flow's score most.
baseline = [{base}]
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eve", required=True)
    p.add_argument("--kind", choices=["mlp", "forest"], default="mlp")
    p.add_argument("--out-model", required=True)
    p.add_argument("--out-spec", help="spec to write (a ruleset with [model])")
    p.add_argument("--name", default="flows-mlp")
    p.add_argument("--version", default="1")
    p.add_argument("--threshold", type=float,
                   help="score from which a flow is flagged; default: the --max-fpr point "
                        "of 5-fold cross-validation on the training split")
    p.add_argument("--max-fpr", type=float, default=0.02,
                   help="false-positive rate the default threshold allows (default 0.02)")
    p.add_argument("--window-secs", type=int, default=300)
    args = p.parse_args()

    flows, alerted = catalogue.read_eve(args.eve)
    y = np.array([f.flow_id in alerted for f in flows], dtype=np.int64)
    x = catalogue.extract(flows, DEFAULT_FEATURES, args.window_secs)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=SEED, stratify=y)
    train = train_mlp if args.kind == "mlp" else train_forest
    if args.threshold is None:
        args.threshold = cross_validated_threshold(train, x_train, y_train, args.max_fpr)
    model = train(x_train, y_train)
    p_test = model.predict_proba(x_test)[:, 1]
    auc = roc_auc_score(y_test, p_test)
    flagged = p_test >= args.threshold
    tpr = flagged[y_test == 1].mean()
    fpr = flagged[y_test == 0].mean()
    args.summary = (f"{len(flows)} flows, {int(y.sum())} malicious; held-out 30 %: "
                    f"AUC {auc:.3f}, TPR {tpr:.3f} / FPR {fpr:.3f} at {args.threshold}")
    print(args.summary)

    onx = convert_sklearn(
        model, initial_types=[("features", FloatTensorType([None, len(DEFAULT_FEATURES)]))],
        options={id(model): {"zipmap": False}}, target_opset=OPSETS)
    onx = only_output(onx, "probabilities")
    onx.doc_string = f"ml-score {args.kind}: {args.summary}"
    data = onx.SerializeToString()
    with open(args.out_model, "wb") as f:
        f.write(data)
    digest = hashlib.sha256(data).hexdigest()
    print(f"{args.out_model}: {len(data)} bytes, sha256 {digest}")
    if args.out_spec:
        baseline = np.median(x_train, axis=0).astype(np.float32)
        with open(args.out_spec, "w") as f:
            f.write(spec_text(args, DEFAULT_FEATURES, baseline, digest))
        print(f"{args.out_spec} written")


if __name__ == "__main__":
    main()
