import pandas as pd

from w2sgen.store.results import format_summary, summary_table


def table(weak, ceiling, w2s):
    pgr = (w2s - weak) / (ceiling - weak)
    return pd.DataFrame([{"task": "t", "weak": "a", "strong": "b", "mode": "probe", "method": "xent", "seed": s,
                          "weak_acc": weak, "ceiling_acc": ceiling, "w2s_acc": w2s, "weak_auroc": 0.5,
                          "ceiling_auroc": 0.5, "w2s_auroc": 0.5, "pgr_acc": pgr, "pgr_auroc": float("nan")}
                         for s in (0, 1)])


def test_summary_marks_small_or_negative_gaps():
    ok = format_summary(summary_table(table(0.60, 0.80, 0.70)))
    assert "0.50 ± 0.00" in ok and "*" not in ok
    for weak, ceiling in ((0.70, 0.71), (0.70, 0.57)):
        text = format_summary(summary_table(table(weak, ceiling, 0.65)))
        assert text.splitlines()[2].endswith("*") and "unreliable PGR" in text
