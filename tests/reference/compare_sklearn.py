"""Model quality against scikit-learn on the same data: the Rust model must not pay for speed.

Trains the Rust model with the `risk` binary (ingest, then train, on a fresh local store over the
given source files) and scikit-learn's LogisticRegression(C=1.0) (lbfgs) on the same compiled
data (all CSV files concatenated, exact duplicate rows dropped, rows without `exited` left out,
missing features imputed with the training mean, features standardised with the mean and
population standard deviation of the values present: the Rust pipeline's preparation). Both are scored on the test file with
scikit-learn's metrics; the script prints both and fails if F1 or ROC AUC differ by more than
the tolerance (0.005).

    /work/venv-sk/bin/python tests/reference/compare_sklearn.py \\
        --risk target/release/risk --source target/bench/data/L/source --test target/bench/data/L/test
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]
TARGET = "exited"


def rust_model(risk, source, test):
    with tempfile.TemporaryDirectory() as store:
        config = os.path.join(store, "config.json")
        with open(config, "w") as f:
            json.dump(
                {
                    "source_data": "file://" + os.path.abspath(source),
                    "compiled_data": "file://" + os.path.join(store, "compiled"),
                    "test_data": "file://" + os.path.abspath(test),
                    "models": "file://" + os.path.join(store, "models"),
                    "production": "file://" + os.path.join(store, "production"),
                    "reports": "file://" + os.path.join(store, "reports"),
                },
                f,
            )
        env = dict(os.environ, RISK_DEPENDENCY_CHECK="off", RUST_LOG="warn")
        subprocess.run([risk, "--config", config, "ingest"], check=True, env=env, stdout=subprocess.DEVNULL)
        out = subprocess.run([risk, "--config", config, "--json", "train"], check=True, env=env, capture_output=True)
        return json.loads(out.stdout)


def rust_probabilities(model, frame):
    z = np.full(len(frame), model["intercept_standardized"])
    for feature in model["features"]:
        x = frame[feature["name"]].astype(float).fillna(feature["impute_value"]).to_numpy()
        z += feature["coefficient_standardized"] * (x - feature["mean"]) / feature["std"]
    return 1.0 / (1.0 + np.exp(-z))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--risk", required=True, help="the risk binary (release build)")
    parser.add_argument("--source", required=True, help="directory of the training CSV files")
    parser.add_argument("--test", required=True, help="directory of the test CSV file(s)")
    parser.add_argument("--tolerance", type=float, default=0.005)
    args = parser.parse_args()

    started = time.perf_counter()
    model = rust_model(args.risk, args.source, args.test)
    rust_seconds = time.perf_counter() - started

    started = time.perf_counter()
    files = sorted(glob.glob(os.path.join(args.source, "*.csv")))
    train = pd.concat([pd.read_csv(f) for f in files], ignore_index=True).drop_duplicates()
    train = train[train[TARGET].notna()]
    # Mean and population std over the values present; a missing value is imputed with the
    # mean, i.e. 0 once standardised (the Rust model's preparation, exactly).
    mu = train[FEATURES].astype(float).mean().to_numpy(copy=True)
    sigma = train[FEATURES].astype(float).std(ddof=0).to_numpy(copy=True)
    sigma[sigma == 0] = 1.0

    def standardise(frame):
        return np.nan_to_num((frame[FEATURES].astype(float).to_numpy() - mu) / sigma, nan=0.0)

    x_std = standardise(train)
    y_train = train[TARGET].astype(int).to_numpy()
    clf = LogisticRegression(C=1.0, max_iter=1000)
    clf.fit(x_std, y_train)
    sklearn_seconds = time.perf_counter() - started

    test = pd.concat([pd.read_csv(f) for f in sorted(glob.glob(os.path.join(args.test, "*.csv")))])
    test = test[test[TARGET].notna()]
    y = test[TARGET].astype(int).to_numpy()
    p_sklearn = clf.predict_proba(standardise(test))[:, 1]
    p_rust = rust_probabilities(model, test)
    scores = {}
    for name, p in [("scikit-learn", p_sklearn), ("rust", p_rust)]:
        scores[name] = {
            "f1": f1_score(y, (p >= 0.5).astype(int), zero_division=0.0),
            "roc_auc": roc_auc_score(y, p),
        }
    # The objective both minimise, at each one's parameters: the lower is nearer the optimum.
    def objective(weights, intercept):
        z = x_std @ weights + intercept
        return float(np.sum(np.logaddexp(0.0, z) - y_train * z) + 0.5 * weights @ weights)

    rust_w = np.array([f["coefficient_standardized"] for f in model["features"]])
    result = {
        "train_rows": int(len(train)),
        "test_rows": int(len(test)),
        "rust": scores["rust"],
        "sklearn": scores["scikit-learn"],
        "f1_difference": scores["rust"]["f1"] - scores["scikit-learn"]["f1"],
        "roc_auc_difference": scores["rust"]["roc_auc"] - scores["scikit-learn"]["roc_auc"],
        "max_probability_difference": float(np.max(np.abs(p_rust - p_sklearn))),
        "rust_coefficients": [f["coefficient_standardized"] for f in model["features"]] + [model["intercept_standardized"]],
        "sklearn_coefficients": clf.coef_[0].tolist() + [float(clf.intercept_[0])],
        "rust_objective": objective(rust_w, model["intercept_standardized"]),
        "sklearn_objective": objective(clf.coef_[0], float(clf.intercept_[0])),
        "rust_ingest_and_train_seconds": rust_seconds,
        "sklearn_read_and_fit_seconds": sklearn_seconds,
        "rust_solver": model["diagnostics"]["solver"],
    }
    print(json.dumps(result, indent=2))
    ok = abs(result["f1_difference"]) <= args.tolerance and abs(result["roc_auc_difference"]) <= args.tolerance
    if not ok:
        print(f"FAIL: difference above {args.tolerance}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
