"""What a data engineer would write today instead: Polars + scikit-learn, for the benchmark.

The same work as the Rust full process's bootstrap path, written the way a current Python user
would: one process (no per-step interpreters), Polars' lazy multi-file CSV scan with exact
duplicates dropped, the compiled data kept as Parquet, LogisticRegression(C=1.0) on standardised
features with missing values imputed with the training mean (as the Rust pipeline does), F1 on
the test data, a copy to "production", summary statistics and missing shares from Polars, the
step timings measured in the run itself (no re-run), and a confusion-matrix PNG with a
classification report. Like most such scripts it re-reads every source file on every run.

    python tests/reference/polars_pipeline.py bench --source DIR --test DIR --runs 3

`bench` runs the full process on a fresh output directory per run and prints wall time and the
peak memory of the process (`wait4`'s ru_maxrss) as JSON, in the same shape as
python_pipeline.py's.
"""

import argparse
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
SCHEMA = {
    "corporation": "str",
    "lastmonth_activity": "i64",
    "lastyear_activity": "i64",
    "number_of_employees": "i64",
    "exited": "i64",
}


def schema():
    import polars as pl

    types = {"str": pl.Utf8, "i64": pl.Int64}
    return {name: types[kind] for name, kind in SCHEMA.items()}


def features(frame, means):
    import polars as pl

    return frame.select([pl.col(f).cast(pl.Float64).fill_null(means[f]) for f in FEATURES]).to_numpy()


def full(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import polars as pl
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import ConfusionMatrixDisplay, classification_report, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    work = args.work
    compiled = os.path.join(work, "compiled")
    models = os.path.join(work, "models")
    production = os.path.join(work, "production")
    reports = os.path.join(work, "reports")
    for directory in (compiled, models, production, reports):
        os.makedirs(directory, exist_ok=True)
    timings = {}

    started = time.perf_counter()
    files = sorted(f for f in os.listdir(args.source) if f.endswith(".csv"))
    (
        pl.scan_csv([os.path.join(args.source, f) for f in files], schema=schema())
        .unique(maintain_order=True)
        .sink_parquet(os.path.join(compiled, "finaldata.parquet"))
    )
    with open(os.path.join(compiled, "ingestedfiles.txt"), "w") as out:
        out.write("\n".join(files) + "\n")
    timings["ingestion"] = time.perf_counter() - started

    started = time.perf_counter()
    data = pl.read_parquet(os.path.join(compiled, "finaldata.parquet"))
    labelled = data.filter(pl.col(TARGET).is_not_null())
    means = {f: labelled[f].cast(pl.Float64).mean() for f in FEATURES}
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0))
    model.fit(features(labelled, means), labelled[TARGET].to_numpy())
    with open(os.path.join(models, "trainedmodel.pkl"), "wb") as out:
        pickle.dump((model, means), out)
    timings["training"] = time.perf_counter() - started

    started = time.perf_counter()
    test = pl.concat(
        [
            pl.read_csv(os.path.join(args.test, f), schema=schema())
            for f in sorted(os.listdir(args.test))
            if f.endswith(".csv")
        ]
    ).filter(pl.col(TARGET).is_not_null())
    y = test[TARGET].to_numpy()
    predicted = model.predict(features(test, means))
    f1 = f1_score(y, predicted)
    with open(os.path.join(models, "latestscore.txt"), "w") as out:
        out.write(f"{f1}\n")
    timings["scoring"] = time.perf_counter() - started

    started = time.perf_counter()
    for name in ("trainedmodel.pkl", "latestscore.txt"):
        shutil.copy(os.path.join(models, name), production)
    shutil.copy(os.path.join(compiled, "ingestedfiles.txt"), production)
    timings["deployment"] = time.perf_counter() - started

    started = time.perf_counter()
    numeric = data.select(FEATURES + [TARGET])
    summary = {
        column: {
            "mean": numeric[column].mean(),
            "median": numeric[column].median(),
            "std": numeric[column].std(),
        }
        for column in numeric.columns
    }
    missing = {column: 100.0 * data[column].null_count() / max(data.height, 1) for column in data.columns}
    with open(os.path.join(reports, "diagnostics.json"), "w") as out:
        json.dump(
            {
                "predictions": predicted.tolist(),
                "summary": summary,
                "missing": missing,
                "timings": {k: timings[k] for k in ("ingestion", "training")},
            },
            out,
        )
    timings["diagnostics"] = time.perf_counter() - started

    started = time.perf_counter()
    ConfusionMatrixDisplay.from_predictions(y, predicted)
    plt.savefig(os.path.join(reports, "confusionmatrix.png"))
    with open(os.path.join(reports, "report.txt"), "w") as out:
        out.write(classification_report(y, predicted, zero_division=0))
    timings["reporting"] = time.perf_counter() - started
    print(json.dumps({"f1": f1, "rows": data.height, "step_seconds": timings}))


def bench(args):
    walls, peaks, results = [], [], []
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
        results.append(json.loads(out))
        shutil.rmtree(work)
    print(
        json.dumps(
            {
                "runs": args.runs,
                "full_process_seconds_median": statistics.median(walls),
                "full_process_seconds_min": min(walls),
                "full_process_seconds_max": max(walls),
                "peak_memory_mib_median": statistics.median(peaks),
                "peak_memory_mib_max": max(peaks),
                "f1": results[-1]["f1"],
                "rows_compiled": results[-1]["rows"],
                "step_seconds_median": {
                    step: statistics.median(r["step_seconds"][step] for r in results)
                    for step in results[-1]["step_seconds"]
                },
            },
            indent=2,
        )
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("step", choices=["full", "bench"])
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
        full(args)


if __name__ == "__main__":
    main()
