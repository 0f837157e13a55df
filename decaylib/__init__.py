"""decaylib: the helper library of the interest-decay tutorial.

The folder tree is the pipeline. Data flow one way, down this list of rooms; a room imports only
rooms above it (and itself), never a ``_private`` name of another room, and never a module through
an import hidden inside a function to dodge a cycle (``tests/test_house.py`` checks all three)::

    schema       the one vocabulary: event types, column names, pair keys        (every notebook)
    checks       argument and frame checks, the errors that name the problem       (every notebook)
    runtime      seeds, devices, "are we in a notebook?"                           (01, 03, 03b)
    artifacts    atomic writes, metrics JSON, stage manifests and lineage           (every notebook)
    data/        synth, load, clean, panel, engine (DuckDB, Spark), preprocess      (01, 02, 08, 09)
    evaluation/  ranking, detection and forecast scores, bootstrap intervals        (03-06, 08)
    forecast/    features, sequences, models, train, checkpoints, baselines, DDP    (03, 03b, 09)
    decay/       evidence, rate, curves, shrinkage, counts, points, ahead,
                 stream, repeat                                                      (04, 05, 08, 09)
    recommend/   strategies (and SAR tuning), advice                                (06, 07)
    teaching/    article map and glossary, exercises, student edition, book         (00, every notebook)
    workflow/    params, pipeline (build or load), runner (papermill, the book)     (every notebook)
    plots        figures with one look                                              (every notebook)

``evaluation`` sits above ``forecast`` and ``decay`` because the tuners there (SAR's half-life, the
early-warning threshold, rolling-origin scores) use its metrics; the metrics use nothing but data.

Submodules are imported explicitly (``from decaylib.decay import rate``) so that ``import
decaylib`` stays cheap and does not pull in PyTorch.
"""

__version__ = "0.1.0"

#: The rooms in their one-way order (the list above); ``tests/test_house.py`` enforces it.
ROOMS = ("schema", "checks", "runtime", "artifacts", "data", "evaluation", "forecast", "decay", "recommend",
         "teaching", "workflow", "plots")

__all__ = ["__version__", "ROOMS"]
