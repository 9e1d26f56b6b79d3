"""Reference values pinned in shared/src/report/stats.rs (run once: python3 report_reference.py;
needs scipy and scikit-learn)."""
from scipy.stats import binomtest
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

for k, n, level in [(3, 14, 0.95), (0, 26, 0.95), (26, 26, 0.95), (512, 1000, 0.95), (7, 20, 0.9)]:
    ci = binomtest(k, n).proportion_ci(level, method="wilson")
    print(f"wilson({k}, {n}, {level}) = ({ci.low!r}, {ci.high!r})")

labels = [0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1]
scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.9, 0.05, 0.6, 0.6, 0.7, 0.2, 1.0]
fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
print("roc fpr", list(fpr))
print("roc tpr", list(tpr))
precision, recall, _ = precision_recall_curve(labels, scores)
print("pr precision", list(precision))
print("pr recall", list(recall))
print("average precision", repr(average_precision_score(labels, scores)))
prob_true, prob_pred = calibration_curve(labels, scores, n_bins=5, strategy="uniform")
print("calibration prob_true", list(prob_true))
print("calibration prob_pred", list(prob_pred))
