"""decaylib: the helper library of the interest-decay tutorial.

One module per stage, data flowing one way::

    synth -> preprocess -> sequences -> models/train -> decay -> detect -> recommend

``plots``, ``io`` (artifacts and ``load_events`` for your own logs), ``evidence`` (the rules that
decide when a per-pair estimate is supported by the data), ``utils``, ``pipeline`` (build-or-load,
the simulator or your own events) and ``runner`` are shared helpers.  Submodules are imported
lazily (``import decaylib.synth``) so that ``import decaylib`` stays cheap and does not pull
in PyTorch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
