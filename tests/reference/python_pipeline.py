"""The usual pandas / scikit-learn version of this pipeline, for the benchmark comparison.

A faithful small rendering of the original per-step scripts (ingestion.py, training.py,
scoring.py, deployment.py, diagnostics.py, reporting.py, fullprocess.py): every step is its own
Python process, the full process starts them one after the other (as the original did with
`os.system("python ...")`), and diagnostics times ingestion and training by running them again
in processes of their own. Two deliberate deviations, both to do the same work as the Rust
pipeline: missing feature values are imputed with the training mean and features are
standardised before LogisticRegression(C=1.0) (the original's data had no gaps and no scaling),
and the outdated-package check (`pip list --outdated`, network) is skipped, as the Rust
benchmark turns its dependency check off.

    python tests/reference/python_pipeline.py bench --source DIR --test DIR --runs 3

`bench` runs the full process on a fresh output directory per run and reports wall time and
the peak memory of the largest process (`wait4`'s ru_maxrss, which covers the step processes).
"""

import argparse
import glob
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]
TARGET = "exited"


def paths(work):
    return {
        "output": os.path.join(work, "ingesteddata"),
        "model": os.path.join(work, "practicemodels"),
        "prod": os.path.join(work, "production_deployment"),
        "reports": os.path.join(work, "reports"),
    }


def ingestion(args):
    import pandas as pd

    p = paths(args.work)
    os.makedirs(p["output"], exist_ok=True)
    files = sorted(glob.glob(os.path.join(args.source, "*.csv")))
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True).drop_duplicates()
    frame.to_csv(os.path.join(p["output"], "finaldata.csv"), index=False)
    with open(os.path.join(p["output"], "ingestedfiles.txt"), "w") as out:
        out.write("\n".join(os.path.basename(f) for f in files) + "\n")


def prepare(frame, means=None):
    x = frame[FEATURES].astype(float)
    if means is None:
        means = x.mean()
    return x.fillna(means).to_numpy(), means


def training(args):
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    p = paths(args.work)
    os.makedirs(p["model"], exist_ok=True)
    frame = pd.read_csv(os.path.join(p["output"], "finaldata.csv"))
    frame = frame[frame[TARGET].notna()]
    x, means = prepare(frame)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
    model.fit(x, frame[TARGET].astype(int))
    with open(os.path.join(p["model"], "trainedmodel.pkl"), "wb") as out:
        pickle.dump((model, means), out)


def load_model(directory):
    with open(os.path.join(directory, "trainedmodel.pkl"), "rb") as f:
        return pickle.load(f)


def test_frame(args):
    import pandas as pd

    files = sorted(glob.glob(os.path.join(args.test, "*.csv")))
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    return frame[frame[TARGET].notna()]


def scoring(args):
    from sklearn.metrics import f1_score

    p = paths(args.work)
    model, means = load_model(p["model"])
    frame = test_frame(args)
    x, _ = prepare(frame, means)
    f1 = f1_score(frame[TARGET].astype(int), model.predict(x))
    with open(os.path.join(p["model"], "latestscore.txt"), "w") as out:
        out.write(f"{f1}\n")


def deployment(args):
    p = paths(args.work)
    os.makedirs(p["prod"], exist_ok=True)
    for source in [
        os.path.join(p["model"], "trainedmodel.pkl"),
        os.path.join(p["model"], "latestscore.txt"),
        os.path.join(p["output"], "ingestedfiles.txt"),
    ]:
        shutil.copy(source, p["prod"])


def diagnostics(args):
    import pandas as pd

    p = paths(args.work)
    model, means = load_model(p["prod"])
    frame = test_frame(args)
    x, _ = prepare(frame, means)
    predictions = model.predict(x).tolist()
    data = pd.read_csv(os.path.join(p["output"], "finaldata.csv"))
    numeric = data.select_dtypes("number")
    summary = {
        column: {
            "mean": float(numeric[column].mean()),
            "median": float(numeric[column].median()),
            "std": float(numeric[column].std()),
        }
        for column in numeric.columns
    }
    missing = (data.isna().mean() * 100).to_dict()
    timings = {}
    for step in ["ingestion", "training"]:
        started = time.perf_counter()
        scratch = tempfile.mkdtemp()
        shutil.copytree(p["output"], paths(scratch)["output"])
        subprocess.run(
            [sys.executable, __file__, step, "--source", args.source, "--test", args.test, "--work", scratch],
            check=True,
        )
        shutil.rmtree(scratch)
        timings[step] = time.perf_counter() - started
    os.makedirs(p["reports"], exist_ok=True)
    with open(os.path.join(p["reports"], "diagnostics.json"), "w") as out:
        json.dump(
            {"predictions": predictions, "summary": summary, "missing": missing, "timings": timings}, out
        )


def reporting(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, classification_report

    p = paths(args.work)
    model, means = load_model(p["prod"])
    frame = test_frame(args)
    x, _ = prepare(frame, means)
    y = frame[TARGET].astype(int)
    predicted = model.predict(x)
    os.makedirs(p["reports"], exist_ok=True)
    ConfusionMatrixDisplay.from_predictions(y, predicted)
    plt.savefig(os.path.join(p["reports"], "confusionmatrix.png"))
    with open(os.path.join(p["reports"], "report.txt"), "w") as out:
        out.write(classification_report(y, predicted, zero_division=0))


STEPS = ["ingestion", "training", "scoring", "deployment", "diagnostics", "reporting"]


def run_step(step, args):
    subprocess.run(
        [sys.executable, __file__, step, "--source", args.source, "--test", args.test, "--work", args.work],
        check=True,
    )


def full(args):
    # Bootstrap path of fullprocess.py on a fresh output directory: every step, in order.
    timings = {}
    for step in STEPS:
        started = time.perf_counter()
        run_step(step, args)
        timings[step] = time.perf_counter() - started
    print(json.dumps(timings))


def bench(args):
    walls, peaks, steps = [], [], []
    for _ in range(args.runs):
        work = tempfile.mkdtemp()
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, __file__, "full", "--source", args.source, "--test", args.test, "--work", work],
            stdout=subprocess.PIPE,
        )
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        walls.append(time.perf_counter() - started)
        if status != 0:
            sys.exit(f"full process failed with status {status}")
        peaks.append(usage.ru_maxrss / 1024)
        steps.append(json.loads(out))
        shutil.rmtree(work)
    result = {
        "runs": args.runs,
        "full_process_seconds_median": statistics.median(walls),
        "full_process_seconds_min": min(walls),
        "full_process_seconds_max": max(walls),
        "peak_memory_mib_median": statistics.median(peaks),
        "peak_memory_mib_max": max(peaks),
        "step_seconds_median": {s: statistics.median(t[s] for t in steps) for s in STEPS},
    }
    print(json.dumps(result, indent=2))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=STEPS + ["full", "bench"])
    parser.add_argument("--source", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--work", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.step == "bench":
        bench(args)
    else:
        if args.work is None:
            sys.exit("--work is required")
        globals()[args.step](args)


if __name__ == "__main__":
    main()
