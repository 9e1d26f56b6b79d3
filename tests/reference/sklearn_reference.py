"""Reference numbers for the Rust model tests (shared/src/model/tests.rs).

Fits scikit-learn's LogisticRegression(C=1.0) (lbfgs, L2) on standardised features of the seed
practice data -- data/practicedata/*.csv concatenated, exact duplicate rows dropped -- and prints
the scaling, the coefficients (standardised space), the probabilities on data/testdata/testdata.csv
and the classification metrics there. The Rust tests hard-code these numbers.

Run from the repository root:
    python3 -m venv /work/venv-sk && /work/venv-sk/bin/pip install scikit-learn pandas
    /work/venv-sk/bin/python tests/reference/sklearn_reference.py
"""

import glob
import json

import numpy as np
import pandas as pd
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.preprocessing import StandardScaler

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]
TARGET = "exited"

files = sorted(glob.glob("data/practicedata/*.csv"))
train = pd.concat([pd.read_csv(f) for f in files], ignore_index=True).drop_duplicates()
test = pd.read_csv("data/testdata/testdata.csv")

scaler = StandardScaler()  # population standard deviation (ddof=0)
x_train = scaler.fit_transform(train[FEATURES].to_numpy(dtype=float))
y_train = train[TARGET].to_numpy()
model = LogisticRegression(C=1.0)  # lbfgs, L2 penalty 1/(2C)*||w||^2, intercept not penalised
model.fit(x_train, y_train)

x_test = scaler.transform(test[FEATURES].to_numpy(dtype=float))
y_test = test[TARGET].to_numpy()
proba = model.predict_proba(x_test)[:, 1]
pred = (proba >= 0.5).astype(int)

w = model.coef_[0]
objective = log_loss(y_train, model.predict_proba(x_train)[:, 1], normalize=False) + 0.5 * w @ w

print(
    json.dumps(
        {
            "sklearn_version": sklearn.__version__,
            "train_files": files,
            "train_rows": int(len(train)),
            "train_positives": int(y_train.sum()),
            "means": scaler.mean_.tolist(),
            "stds": scaler.scale_.tolist(),
            "coefficients_standardized": w.tolist(),
            "intercept_standardized": float(model.intercept_[0]),
            "training_objective": float(objective),
            "test_probabilities": proba.tolist(),
            "test_predictions": pred.tolist(),
            "test_labels": y_test.tolist(),
            "f1": f1_score(y_test, pred, zero_division=0.0),
            "precision": precision_score(y_test, pred, zero_division=0.0),
            "recall": recall_score(y_test, pred, zero_division=0.0),
            "accuracy": accuracy_score(y_test, pred),
            "roc_auc": roc_auc_score(y_test, proba),
        },
        indent=2,
    )
)
