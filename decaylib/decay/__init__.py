"""Decay (notebooks 04, 05, 08, 09): ``evidence`` (when an estimate is supported), ``rate`` (λ by
log-ratio, least squares, Poisson MLE; the Cramér-Rao bound), ``curves`` (exponential or power law),
``shrinkage`` (pooled λ), ``counts`` (forecasts of future counts), ``points`` (decay points and early
warning), ``ahead`` (CUSUM and hazard), ``stream`` (λ from sufficient statistics), ``repeat`` (BG/NBD)."""
