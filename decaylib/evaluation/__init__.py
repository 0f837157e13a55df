"""Scores (notebooks 03-06, 08): ``ranking`` (HR, NDCG, coverage), ``detection`` (decay points and
early warnings against the truth), ``forecast`` (regression metrics, Poisson deviance, calibration),
``bootstrap`` (intervals for a metric and for paired differences)."""
