"""Recommendations (notebooks 06, 07): ``strategies`` (popularity, recency, SAR and its tuned
half-life, decay-aware and count-based ranking) and ``advice`` (the per-user report's actions)."""
