"""Events in, daily panel out (notebooks 01, 02, 08, 09).

``synth`` simulates events with known truth; ``load`` reads your own log; ``clean`` holds the
cleaning rules (one set for pandas and SQL); ``panel`` turns clean events into the daily panel;
``engine`` runs the same rules in DuckDB or Spark; ``preprocess`` is the facade that picks the engine.
Order inside the room: synth, load, clean, panel, engine, preprocess.
"""
