"""Training loop, prediction, checkpoints and user-grouped cross-validation for the forecaster.

The loop is deliberately lean so that a GPU is not starved and a 2-core CPU is not wasted:

* a :class:`~decaylib.forecast.sequences.WindowSet` goes to the device ONCE as its per-row arrays
  (a :class:`~decaylib.forecast.sequences.WindowDataset`: each day stored once, not ``seq_length``
  times); each epoch draws a seeded permutation and gathers each batch with one indexing op (no
  ``Dataset.__getitem__`` per sample); prediction slices batches the same way, so neither ever
  holds ``[n_windows, seq_length, n_features]``;
* the loss is accumulated on the device and read back once per epoch (no per-batch ``.item()``);
* one progress line over epochs (:class:`EpochProgress`), updated in place, with the losses.

Loss ``"mse"`` / ``"huber"`` is computed in the model's scaled target space (see
``decaylib.forecast.sequences``); ``"poisson"`` maps outputs and targets back to interest units
first, with the same inverse as the forecasts (:func:`poisson_loss`), so the network is fitted on
the Poisson deviance it is scored on.  Forecasts are mapped back to interest units with the target
transform's exact inverse (:func:`predict_interest`).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from decaylib.checks import check_choice
from decaylib.checks import check_int as _pos_int
from decaylib.evaluation.forecast import MIN_EXPECTED, regression_metrics
from decaylib.forecast.features import Standardizer
from decaylib.forecast.models import build_model
from decaylib.forecast.sequences import (
    WindowDataset,
    WindowSet,
    build_windows,
    check_window_memory,
    fit_feature_stats,
    fit_target_transform,
    user_folds,
)
from decaylib.runtime import in_notebook, resolve_device, set_seed
from decaylib.schema import FEATURE_COLUMNS, PAIR_COLS

__all__ = ['LOSSES', 'AUTO_SINGLE_THREAD_MAX_HIDDEN', 'poisson_loss', 'torch_threads', 'EpochProgress', 'TrainHistory', 'train_model', 'predict', 'predict_interest', 'forecast_frame', 'cross_validate', 'FoldEnsemble', 'permutation_importance', 'fine_tune']

#: Allowed training losses: ``"mse"`` and ``"huber"`` in the scaled target space, ``"poisson"``
#: (half the Poisson deviance in interest units, see :func:`poisson_loss`).
LOSSES: tuple[str, ...] = ("mse", "huber", "poisson")


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _as_tensor(x, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        t = torch.from_numpy(np.asarray(x, dtype=np.float32))
    else:
        raise TypeError(f"{name} must be a torch.Tensor or numpy array, got {type(x).__name__}")
    if not torch.is_floating_point(t):
        t = t.float()
    elif t.dtype != torch.float32:
        t = t.float()
    return t


def _as_x(data, name: str) -> torch.Tensor:
    if isinstance(data, WindowSet):
        data = data.X
    x = _as_tensor(data, name)
    if x.dim() != 3:
        raise ValueError(f"{name} must be [n, seq_length, n_features], got shape {tuple(x.shape)}")
    return x


def _as_xy(data, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, WindowSet):
        X, Y = data.tensors
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, Y = data
    else:
        raise TypeError(f"{name} must be a WindowSet or a pair (X, Y), got {type(data).__name__}")
    X = _as_x(X, f"{name} X")
    Y = _as_tensor(Y, f"{name} Y")
    if Y.dim() != 2:
        raise ValueError(f"{name} Y must be [n, horizon], got shape {tuple(Y.shape)}")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{name}: X has {X.shape[0]} windows but Y has {Y.shape[0]}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 windows)")
    if not (torch.isfinite(X).all() and torch.isfinite(Y).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X, Y


class _Batches:
    """Training or validation windows on the device, sliced batch by batch.

    A :class:`WindowSet` stays a :class:`WindowDataset` (its per-row arrays on the device, each
    batch gathered on demand: no ``[n, seq_length, n_features]`` copy); a pair ``(X, Y)`` is
    moved to the device as it is.  Both give the same batches for the same window positions.
    """

    def __init__(self, data, name: str):
        if isinstance(data, WindowSet):
            if not data.with_target:
                raise ValueError(f"{name} has no targets (built with with_target=False)")
            if len(data) == 0:
                raise ValueError(f"{name} is empty (0 windows)")
            self.windows, self.X, self.Y, self.ds = data, None, None, None
            self.n, self.x_shape, self.h = len(data), (data.seq_length, len(data.feature_columns)), data.horizon
        else:
            self.windows, self.ds = None, None
            self.X, self.Y = _as_xy(data, name)
            self.n, self.x_shape, self.h = int(self.X.shape[0]), tuple(self.X.shape[1:]), int(self.Y.shape[1])

    def to(self, dev) -> None:
        if self.windows is not None:
            self.ds = WindowDataset(self.windows, device=dev)
        else:
            self.X, self.Y = self.X.to(dev), self.Y.to(dev)

    def take(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows at positions ``idx`` (int64 tensor on the device)."""
        if self.ds is not None:
            return self.ds.batch(idx)
        return self.X.index_select(0, idx), self.Y.index_select(0, idx)

    def span(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows ``start .. stop - 1`` in order."""
        if self.ds is not None:
            return self.ds.batch(torch.arange(start, min(stop, self.n), device=self.ds.device))
        return self.X[start:stop], self.Y[start:stop]


def _pos_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)

#: "auto" uses one CPU thread for models up to this hidden size (see :func:`train_model`).
AUTO_SINGLE_THREAD_MAX_HIDDEN = 128


def _auto_threads(num_threads, device: str, model: nn.Module) -> int | None:
    """Resolve ``num_threads``: an int, None (leave PyTorch's setting) or ``"auto"``."""
    if num_threads is None:
        return None
    if isinstance(num_threads, str):
        if num_threads != "auto":
            raise ValueError(f"num_threads must be an int >= 1, None or 'auto', got {num_threads!r}")
        if not str(device).startswith("cpu"):
            return None
        config = getattr(model, "config", None)
        hidden = config.get("hidden_size") if isinstance(config, dict) else None
        if not isinstance(hidden, int):
            return None
        return 1 if hidden <= AUTO_SINGLE_THREAD_MAX_HIDDEN else None
    return _pos_int("num_threads", num_threads)


@contextlib.contextmanager
def torch_threads(num_threads: int | str | None = "auto", *, device: str = "cpu", model: nn.Module | None = None):
    """Context manager: ``torch.set_num_threads`` for the block only, restored afterwards.

    ``num_threads`` is an int, None (no change) or ``"auto"``: one thread on the CPU when
    ``model.config["hidden_size"] <= AUTO_SINGLE_THREAD_MAX_HIDDEN`` (small recurrent matmuls
    run faster and much more steadily on one thread than on two), no change otherwise.

    Notebooks 03, 03b, 04 and 08.
    """
    n = _auto_threads(num_threads, device, model)
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
class EpochProgress:
    """One line of training progress, updated in place: ``label: epoch 7/20 · train 0.1234 · val 0.1456 · best 5 · 3.2 s``.

    In a notebook the line is one display output replaced at each epoch (JupyterLab shows it
    live; papermill and the HTML book keep only the last state, a clean line of text, never a
    block of stderr bars). In a terminal it is rewritten with ``\\r`` and ends with a newline.

    Notebooks 03, 03b and 09.
    """

    def __init__(self, total: int, label: str, enabled: bool = True):
        self.total, self.label, self.enabled = int(total), str(label), bool(enabled)
        self._t0 = time.perf_counter()
        self._handle = None
        self._text = None
        if self.enabled and in_notebook():
            from IPython.display import display

            self._handle = display(_PlainText(f"{self.label}: starting ({self.total} epochs)"), display_id=True)

    def line(self, epoch: int, **values) -> str:
        parts = [f"{self.label}: epoch {epoch}/{self.total}"] + [f"{k} {v}" for k, v in values.items()]
        return " · ".join(parts + [f"{time.perf_counter() - self._t0:.1f} s"])

    def update(self, epoch: int, **values) -> None:
        self._text = self.line(epoch, **values)
        if not self.enabled:
            return
        if self._handle is not None:
            self._handle.update(_PlainText(self._text))
        else:
            import sys

            sys.stdout.write("\r" + self._text)
            sys.stdout.flush()

    def close(self) -> None:
        if self.enabled and self._handle is None and self._text is not None:
            import sys

            sys.stdout.write("\n")
            sys.stdout.flush()


class _PlainText:
    """Shown as plain text (no quotes, unlike a str's repr)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


@dataclass
class TrainHistory:
    """What :func:`train_model` did, epoch by epoch (epochs are numbered from 1).

    Attributes
    ----------
    train_loss, val_loss : list of float
        Mean loss per epoch (``val_loss`` empty without ``val``): in the scaled target space for
        ``"mse"``/``"huber"``, half the mean Poisson deviance in interest units for ``"poisson"``.
        ``train_loss`` is the running mean over the epoch's batches (weights change meanwhile).
    samples_per_sec : list of float
        Training windows per second of each epoch's training pass (validation excluded).
    epoch_seconds : list of float
        Wall time of each epoch, validation included.
    best_epoch : int
        Epoch whose weights the model holds at the end (lowest ``val_loss`` when
        ``restore_best``; else the last epoch).
    best_val_loss : float or None
    stopped_early : bool
    device : str
    n_train, n_val : int

    Notebooks 03, 03b and 09.
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    samples_per_sec: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float | None = None
    stopped_early: bool = False
    device: str = "cpu"
    n_train: int = 0
    n_val: int = 0

    @property
    def epochs_run(self) -> int:
        """Number of epochs trained."""
        return len(self.train_loss)

    @property
    def total_seconds(self) -> float:
        """Sum of ``epoch_seconds``."""
        return float(sum(self.epoch_seconds))

    def to_frame(self) -> pd.DataFrame:
        """One row per epoch: epoch, train_loss, val_loss (NaN without validation), samples_per_sec, seconds."""
        n = self.epochs_run
        return pd.DataFrame(
            {
                "epoch": np.arange(1, n + 1, dtype=np.int64),
                "train_loss": self.train_loss,
                "val_loss": self.val_loss if self.val_loss else [np.nan] * n,
                "samples_per_sec": self.samples_per_sec,
                "seconds": self.epoch_seconds,
            }
        )


def _check_target_transform(target_transform, what: str) -> Standardizer:
    if target_transform is None:
        raise ValueError(
            f"{what} needs target_transform: the Standardizer the targets Y were scaled with "
            "(fit_target_transform(panel, train_users)), to map outputs and targets back to interest units"
        )
    if not isinstance(target_transform, Standardizer) or target_transform.n_features != 1:
        raise TypeError(
            "target_transform must be a one-column Standardizer (fit_target_transform(...)), "
            f"got {type(target_transform).__name__}"
        )
    return target_transform


def poisson_loss(output: torch.Tensor, target: torch.Tensor, target_transform: Standardizer, *,
                 reduction: str = "mean", eps: float = MIN_EXPECTED) -> torch.Tensor:
    """Half the Poisson deviance of the forecasts, in interest units (differentiable, in torch).

    ``output`` and ``target`` are in the scaled target space (``z``). Both are mapped back with
    the inverse of ``target_transform``, the one :func:`predict_interest` applies:
    ``m = max(expm1(z_out * std + mean), eps)`` is the Poisson mean (floored at ``eps``, as
    :func:`decaylib.evaluation.forecast.poisson_deviance` floors it at ``MIN_EXPECTED``; below the
    floor the gradient is 0) and ``y = max(expm1(z_target * std + mean), 0)``. Per element::

        m - y * log(m) + (y * log(y) - y)   =   y * log(y / m) - (y - m)   (0 * log 0 = 0)

    i.e. the Poisson negative log-likelihood up to a term in ``y`` alone, which is added so the
    loss is exactly half the unit Poisson deviance: 0 at a perfect forecast, and twice the mean
    loss is the mean deviance per (window, step). The gradient is that of ``m - y log m``.
    ``reduction``: ``"mean"`` (over all elements), ``"sum"`` or ``"none"``.

    Notebooks 03 and 03b (``train_model(..., loss="poisson", target_transform=tstats)``).
    """
    ts = _check_target_transform(target_transform, 'poisson_loss')
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    eps = _pos_float("eps", eps)
    if output.shape != target.shape:
        raise ValueError(f"output shape {tuple(output.shape)} differs from target shape {tuple(target.shape)}")
    mean, std = float(ts.mean[0]), float(ts.std[0])
    m = torch.clamp(torch.expm1(output * std + mean), min=eps)
    y = torch.clamp(torch.expm1(target * std + mean), min=0.0)
    per = m - y * torch.log(m) + torch.xlogy(y, y) - y
    if reduction == "mean":
        return per.mean()
    if reduction == "sum":
        return per.sum()
    return per


def _loss_fn(name: str, target_transform: Standardizer | None = None):
    """``loss(output, target, reduction="mean")`` for the loss called ``name`` (one of :data:`LOSSES`)."""
    check_choice("loss", name, LOSSES)
    if name == "poisson":
        ts = _check_target_transform(target_transform, "loss='poisson'")

        def poisson(output, target, reduction: str = "mean"):
            return poisson_loss(output, target, ts, reduction=reduction)

        return poisson
    return F.mse_loss if name == "mse" else F.huber_loss


@torch.no_grad()
def _eval_loss(model: nn.Module, data: _Batches, loss_fn, batch_size: int) -> float:
    total = None
    n = data.n
    for start in range(0, n, batch_size):
        xb, yb = data.span(start, start + batch_size)
        if total is None:
            total = torch.zeros((), device=xb.device)
        total += loss_fn(model(xb), yb, reduction="sum")
    return float(total.item()) / (n * data.h)


def train_model(
    model: nn.Module,
    train,
    val=None,
    *,
    epochs: int = 20,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    weight_decay: float = 0.0,
    loss: str = "mse",
    seed: int = 0,
    device: str = "auto",
    patience: int | None = 5,
    min_delta: float = 0.0,
    restore_best: bool = True,
    grad_clip: float | None = None,
    progress: bool = True,
    desc: str | None = None,
    num_threads: int | str | None = "auto",
    eval_batch_size: int = 1024,
    target_transform: Standardizer | None = None,
) -> TrainHistory:
    """Train ``model`` with Adam on mini-batches; early stopping on validation loss.

    Parameters
    ----------
    model : nn.Module
        Maps ``[B, L, F]`` to ``[B, H]`` (e.g. a :class:`~decaylib.forecast.models.Forecaster`). It is
        moved to ``device`` and left there, in eval mode, holding the best weights.
    train, val : WindowSet or (X, Y)
        ``X`` float ``[n, L, F]``, ``Y`` float ``[n, H]`` (scaled targets). ``val`` is optional.
    epochs : int
        Maximum number of epochs.
    batch_size : int
    learning_rate, weight_decay : float
        Adam settings.
    loss : {"mse", "huber", "poisson"}
        ``"mse"`` / ``"huber"``: on the scaled targets. ``"poisson"``: half the Poisson deviance of
        the forecasts in interest units (:func:`poisson_loss`; needs ``target_transform``), the
        score the forecasts get elsewhere. Training, validation and early stopping all use it.
    seed : int
        Seeds PyTorch (:func:`decaylib.runtime.set_seed`, for dropout) and the batch order.
        The same seed, model initialisation and data give identical weights on the CPU.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` (:func:`decaylib.runtime.resolve_device`).
    patience : int or None
        Stop after this many epochs without a validation improvement larger than
        ``min_delta``; None trains all ``epochs``. Ignored without ``val``.
    restore_best : bool
        With ``val``: load the weights of the best validation epoch at the end.
    grad_clip : float, optional
        Clip the gradient norm to this value.
    progress : bool
        Show one progress line over epochs, updated in place (:class:`EpochProgress`).
    desc : str, optional
        Progress bar label.
    num_threads : int, "auto" or None
        ``torch.set_num_threads`` during this call only (restored afterwards). ``"auto"``: one
        thread on the CPU for models with ``hidden_size <= 128`` (small recurrent matmuls run
        faster and far more steadily on one thread than on two), PyTorch's setting otherwise;
        None never changes it.
    eval_batch_size : int
        Batch size for the validation pass.
    target_transform : Standardizer, optional
        The transform the targets were scaled with (:func:`~decaylib.forecast.sequences.fit_target_transform`);
        required by ``loss="poisson"``, unused by the other losses.

    Returns
    -------
    TrainHistory

    Notebooks 03 and 03b.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    epochs = _pos_int("epochs", epochs)
    batch_size = _pos_int("batch_size", batch_size)
    eval_batch_size = _pos_int("eval_batch_size", eval_batch_size)
    learning_rate = _pos_float("learning_rate", learning_rate)
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(f"weight_decay must be a number >= 0, got {weight_decay!r}")
    if patience is not None:
        patience = _pos_int("patience", patience)
    if grad_clip is not None:
        grad_clip = _pos_float("grad_clip", grad_clip)
    if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) or min_delta < 0:
        raise ValueError(f"min_delta must be a number >= 0, got {min_delta!r}")
    loss_fn = _loss_fn(loss, target_transform)
    tr = _Batches(train, "train")
    va = None
    if val is not None:
        va = _Batches(val, "val")
        if va.x_shape != tr.x_shape or va.h != tr.h:
            raise ValueError(
                f"val shapes {va.x_shape}/{va.h} differ from train "
                f"{tr.x_shape}/{tr.h}"
            )
    dev = resolve_device(device)
    set_seed(seed)
    gen = torch.Generator().manual_seed(int(seed))

    with torch_threads(num_threads, device=dev, model=model):
        model.to(dev)
        tr.to(dev)
        if va is not None:
            va.to(dev)
        # One dry run (eval mode: consumes no random numbers) so a shape mismatch fails clearly.
        model.eval()
        with torch.no_grad():
            out = model(tr.span(0, 2)[0])
        if tuple(out.shape) != (min(2, tr.n), tr.h):
            raise ValueError(
                f"model output shape {tuple(out.shape[1:])} does not match targets [n, {tr.h}]"
            )
        opt = torch.optim.Adam(model.parameters(), lr=learning_rate, weight_decay=float(weight_decay))
        hist = TrainHistory(device=dev, n_train=tr.n, n_val=0 if va is None else va.n)
        n = tr.n

        def train_epoch() -> float:
            model.train()
            perm = torch.randperm(n, generator=gen).to(dev, non_blocking=True)
            total = torch.zeros((), device=dev)
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                xb, yb = tr.take(idx)
                opt.zero_grad(set_to_none=True)
                batch_loss = loss_fn(model(xb), yb)
                batch_loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                opt.step()
                total += batch_loss.detach() * idx.shape[0]
            return float(total.item()) / n  # the only host sync of the epoch

        def val_loss() -> float:
            model.eval()
            return _eval_loss(model, va, loss_fn, eval_batch_size)

        label = desc or f"train {getattr(model, 'config', {}).get('cell', type(model).__name__)}"
        run_epochs(model, hist, train_epoch, val_loss if va is not None else None, epochs=epochs, patience=patience,
                   min_delta=min_delta, restore_best=restore_best, bar=EpochProgress(epochs, label, enabled=progress))
    return hist


def run_epochs(model: nn.Module, hist: TrainHistory, train_epoch, val_loss=None, *, epochs: int,
               patience: int | None, min_delta: float, restore_best: bool, bar: EpochProgress) -> None:
    """The epoch loop of :func:`train_model` and of every DDP rank (:mod:`decaylib.forecast.distributed`).

    ``train_epoch()`` trains one epoch and returns its mean training loss; ``val_loss()`` (or
    None) returns the validation loss. Both callers' losses are already global (the DDP ranks
    all-reduce inside them). This loop owns what they share: the finite-loss check, the history
    (losses, samples per second, seconds per epoch), the best epoch and its weights, early
    stopping after ``patience`` epochs without an improvement above ``min_delta``, the progress
    line, and at the end the best weights restored (``restore_best``) and eval mode.

    Notebooks 03, 03b and 09.
    """
    best_state, best_val, since_best = None, math.inf, 0
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            train_loss = train_epoch()
            t1 = time.perf_counter()
            if not math.isfinite(train_loss):
                raise FloatingPointError(
                    f"training loss became {train_loss} at epoch {epoch}; lower learning_rate or set grad_clip"
                )
            hist.train_loss.append(train_loss)
            hist.samples_per_sec.append(hist.n_train / max(t1 - t0, 1e-12))
            postfix = {"train": f"{train_loss:.4f}"}
            if val_loss is not None:
                v = val_loss()
                hist.val_loss.append(v)
                postfix["val"] = f"{v:.4f}"
                if v < best_val - min_delta:
                    best_val, since_best, hist.best_epoch = v, 0, epoch
                    if restore_best:
                        best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
                else:
                    since_best += 1
                postfix["best"] = hist.best_epoch
            hist.epoch_seconds.append(time.perf_counter() - t0)
            bar.update(epoch, **postfix)
            if val_loss is not None and patience is not None and since_best >= patience:
                hist.stopped_early = epoch < epochs
                break
    finally:
        bar.close()
    if val_loss is None or not restore_best:
        hist.best_epoch = hist.epochs_run
    if val_loss is not None:
        hist.best_val_loss = best_val if restore_best else hist.val_loss[-1]
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()


# --------------------------------------------------------------------------------------------
# prediction and metrics
# --------------------------------------------------------------------------------------------
def predict(
    model: nn.Module,
    X,
    batch_size: int = 1024,
    device: str = "auto",
    num_threads: int | str | None = "auto",
) -> np.ndarray:
    """Model outputs (scaled target space) for windows ``X`` as a float32 array ``[n, horizon]``.

    ``X`` is a WindowSet, tensor or array ``[n, L, F]``. The model is moved to ``device`` and
    evaluated in eval mode under ``torch.inference_mode`` (its previous mode is restored).
    ``num_threads`` as in :func:`train_model`.

    Notebooks 03b, 04 and 08.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(X, WindowSet):
        # windows are sliced batch by batch from the set's per-row arrays, never all at once
        ds, n = WindowDataset(X), len(X)

        def batch(a: int, b: int) -> torch.Tensor:
            return ds.batch_x(torch.arange(a, b))
    else:
        x = _as_x(X, "X")
        n = int(x.shape[0])

        def batch(a: int, b: int) -> torch.Tensor:
            return x[a:b]
    batch_size = _pos_int("batch_size", batch_size)
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev)
    model.eval()
    try:
        outs = []
        with torch_threads(num_threads, device=dev, model=model), torch.inference_mode():
            for start in range(0, n, batch_size):
                outs.append(model(batch(start, min(start + batch_size, n)).to(dev, non_blocking=True)))
            out = torch.cat(outs) if outs else torch.empty((0, getattr(model, "horizon", 0)))
        return out.float().cpu().numpy()
    finally:
        model.train(was_training)


def predict_interest(
    model: nn.Module,
    X,
    target_transform: Standardizer,
    *,
    batch_size: int = 1024,
    device: str = "auto",
    clip: bool = True,
    num_threads: int | str | None = "auto",
) -> np.ndarray:
    """Forecasts in panel interest units (float64 ``[n, horizon]``).

    Applies the exact inverse of the target transform, ``expm1(z * std + mean)``, to
    :func:`predict`'s output; ``clip=True`` clips at 0 (interest is never negative).

    Notebooks 03 and 03b.
    """
    if not isinstance(target_transform, Standardizer):
        raise TypeError(
            "target_transform must be a Standardizer (fit_target_transform(...)), "
            f"got {type(target_transform).__name__}"
        )
    z = predict(model, X, batch_size=batch_size, device=device, num_threads=num_threads)
    return target_transform.inverse_transform(z, clip=clip)


def forecast_frame(
    model: nn.Module,
    windows: WindowSet,
    target_transform: Standardizer,
    *,
    batch_size: int = 1024,
    device: str = "auto",
    num_threads: int | str | None = "auto",
) -> pd.DataFrame:
    """Long table of forecasts: one row per (window, step).

    Columns: user_id, category, origin_day, horizon (1..H), day (= origin_day + horizon),
    interest_pred (interest units, the panel's ``interest`` scale), and ``actual`` when the
    windows have targets.  This is the layout of ``forecasts.parquet`` and of
    :func:`decaylib.decay.rate.lambda_from_forecasts`.

    Notebook 03.
    """
    if not isinstance(windows, WindowSet):
        raise TypeError(f"windows must be a WindowSet, got {type(windows).__name__}")
    _check_forecast_rows(len(windows), windows.horizon, 6 + windows.with_target, "forecast_frame")
    pred = predict_interest(
        model, windows, target_transform, batch_size=batch_size, device=device, num_threads=num_threads
    )
    out = _long_forecasts([(windows.key_arrays("user_id", "category", "origin_day"), pred)], with_day=True)
    if windows.with_target:
        out["actual"] = windows.y_raw.reshape(-1)
    return out


def _check_forecast_rows(n_windows: int, horizon: int, n_columns: int, what: str) -> None:
    """A long table of ``n_windows x horizon`` rows of ``n_columns`` 8-byte columns must fit the budget."""
    rows = int(n_windows) * int(horizon)
    check_window_memory(
        rows * n_columns * 8,
        f"{what}: {n_windows:,} windows x horizon={horizon} = {rows:,} forecast rows",
        "pass a smaller horizon, forecast fewer users, or build the panel with preprocess(until='last_activity') "
        "(each pair stops at its last event) or a shorter start_date/end_day window")


def _long_forecasts(parts, *, with_day: bool) -> pd.DataFrame:
    """One row per (window, step) from ``parts``, a list of ``(key arrays, forecasts [n, H])``.

    Each column is allocated once at its final length and filled part by part (no concatenation
    of long frames); the frame takes the arrays as they are (``copy=False``, one block each).
    """
    h = int(parts[0][1].shape[1])
    total = sum(int(p[1].shape[0]) for p in parts)
    cols = {"user_id": np.empty(total * h, np.int64), "category": np.empty(total * h, np.int64),
            "origin_day": np.empty(total * h, np.int64),
            "horizon": np.tile(np.arange(1, h + 1, dtype=np.int64), total)}
    if with_day:
        cols["day"] = np.empty(total * h, np.int64)
    cols["interest_pred"] = np.empty(total * h, np.float64)
    a = 0
    parts.reverse()
    while parts:  # each part is released as soon as its rows are copied
        keys, pred = parts.pop()
        b = a + int(pred.shape[0]) * h
        for k in ("user_id", "category", "origin_day"):
            cols[k][a:b] = np.repeat(keys[k], h)
        if with_day:
            cols["day"][a:b] = cols["origin_day"][a:b] + cols["horizon"][a:b]
        cols["interest_pred"][a:b] = pred.reshape(-1)
        del keys, pred
        a = b
    return pd.DataFrame(cols, copy=False)


# --------------------------------------------------------------------------------------------
# cross-validation
# --------------------------------------------------------------------------------------------
def cross_validate(
    panel: pd.DataFrame,
    model_config: dict | None = None,
    *,
    n_folds: int = 3,
    folds: Sequence[tuple[Any, Any]] | None = None,
    users=None,
    seq_length: int = 14,
    horizon: int = 7,
    feature_columns: Sequence[str] = FEATURE_COLUMNS,
    epochs: int = 5,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    progress: bool = False,
    num_threads: int | str | None = "auto",
    max_train_windows: int | None = None,
    return_forecasts: bool = False,
    pad_start: bool = False,
    return_models: bool = False,
    loss: str = "mse",
):
    """K-fold cross-validation grouped by user; one row of validation metrics per fold.

    With ``return_models=True`` the fold models come back too, as a :class:`FoldEnsemble` (the
    last element of the returned tuple): each with the transforms fitted on its own training users.

    With ``return_forecasts=True`` it returns ``(table, forecasts)``, where ``forecasts`` holds
    **out-of-fold** forecast paths (:func:`forecast_frame` layout plus ``fold``) for every
    forecast origin of every validation user, including the last days of each pair (no target
    needed): each user's forecasts come from the fold model that never saw that user, and each
    path uses data up to its origin day only.  Later notebooks use them as honest, causal
    forecasts for all pairs.  ``max_train_windows`` subsamples each fold's training windows
    (seeded) to bound the run time: it draws window positions, nothing is copied, and training
    slices its batches from the panel's rows (:class:`~decaylib.forecast.sequences.WindowDataset`).
    The out-of-fold table (every origin x ``horizon`` rows) is checked against
    :data:`~decaylib.forecast.sequences.WINDOW_MEMORY_BUDGET` before any training
    (:class:`~decaylib.checks.MemoryBudgetError` naming ``horizon`` and the panel's extent).

    For each fold, the feature and target transforms are fitted on that fold's training users
    only, a fresh model (``model_config`` + ``n_features``/``horizon`` from the data, initial
    weights seeded by ``seed + fold``) is trained for exactly ``epochs`` epochs (no early
    stopping, so the validation fold stays unseen) and scored on the validation users.
    Target days flagged ``observed == False`` (logging outages) are left out of the metrics.

    Parameters
    ----------
    panel : DataFrame
        Daily panel.
    model_config : dict, optional
        :class:`~decaylib.forecast.models.Forecaster` settings except ``n_features`` and ``horizon``,
        e.g. ``{"cell": "gru", "hidden_size": 32, "num_layers": 1}``.
    n_folds : int
        Number of user folds (:func:`~decaylib.forecast.sequences.user_folds` with ``seed``).
    folds : list of (train_users, val_users), optional
        Ready-made folds; overrides ``n_folds``/``users``.
    users : array-like of int, optional
        Users to fold (default: all panel users), e.g. the training+validation users only.
    seq_length, horizon, feature_columns :
        Window settings, as in :func:`~decaylib.forecast.sequences.build_windows`.
    epochs, batch_size, learning_rate, seed, device, progress, num_threads :
        As in :func:`train_model`.
    loss : {"mse", "huber", "poisson"}
        As in :func:`train_model`; ``"poisson"`` uses each fold's own target transform.

    Returns
    -------
    DataFrame
        fold, cell, n_train_users, n_val_users, n_train_windows, n_val_windows, train_loss,
        val_mae, val_rmse (interest units), persistence_mae, persistence_rmse (forecast = the
        origin day's interest for every step), seconds.

    Notebooks 03b and 05.
    """
    check_choice("loss", loss, LOSSES)
    config = dict(model_config or {})
    for k in ("n_features", "horizon"):
        if k in config:
            raise ValueError(f"model_config must not set {k!r}: it comes from the data")
    if isinstance(feature_columns, str):
        raise TypeError("feature_columns must be a sequence of column names, not a string")
    if not isinstance(panel, pd.DataFrame):
        raise TypeError(f"panel must be a pandas DataFrame, got {type(panel).__name__}")
    if "user_id" not in panel.columns:
        raise KeyError("panel is missing required column 'user_id'")
    if folds is None:
        folds = user_folds(panel["user_id"].to_numpy() if users is None else users, n_folds=n_folds, seed=seed)
    else:
        folds = list(folds)
        if not folds or not all(isinstance(f, (tuple, list)) and len(f) == 2 for f in folds):
            raise ValueError("folds must be a non-empty list of (train_users, val_users) pairs")
    n_folds = len(folds)
    if return_forecasts:
        # refuse at once, not after hours of training: every origin of every user x horizon rows
        n_origins = _count_origins(panel, folds, _pos_int("seq_length", seq_length), pad_start)
        _check_forecast_rows(n_origins, _pos_int("horizon", horizon), 7, "the cross-fitted forecasts (return_forecasts=True)")
    rows = []
    oof = []
    members = []
    for fold, (tr_u, va_u) in enumerate(folds):
        overlap = np.intersect1d(np.asarray(tr_u), np.asarray(va_u))
        if overlap.size:
            raise ValueError(
                f"fold {fold}: {overlap.size} users are in both train and val, e.g. {overlap[:5].tolist()}"
            )
        t0 = time.perf_counter()
        fstats = fit_feature_stats(panel, tr_u, feature_columns)
        tstats = fit_target_transform(panel, tr_u)
        tr = build_windows(panel, fstats, tstats, seq_length=seq_length, horizon=horizon, users=tr_u, pad_start=pad_start,
                           name=f"the {len(tr_u)} training users of fold {fold + 1}/{n_folds}")
        tr = tr.sample(max_train_windows, seed=seed + fold)
        va = build_windows(panel, fstats, tstats, seq_length=seq_length, horizon=horizon, users=va_u, pad_start=pad_start,
                           name=f"the {len(va_u)} validation users of fold {fold + 1}/{n_folds} (try a smaller n_folds)")
        model = build_model({**config, "n_features": len(fstats.columns), "horizon": horizon}, seed=seed + fold)
        hist = train_model(
            model,
            tr,
            None,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed + fold,
            device=device,
            progress=progress,
            desc=f"fold {fold + 1}/{n_folds}",
            num_threads=num_threads,
            loss=loss,
            target_transform=tstats,
        )
        pred = predict_interest(model, va, tstats, device=device, num_threads=num_threads)
        y_raw, observed = va.y_raw, va.target_observed
        m = regression_metrics(y_raw, pred, mask=observed)
        persist = np.repeat(va.key_arrays("origin_interest")["origin_interest"][:, None], horizon, axis=1)
        pm = regression_metrics(y_raw, persist, mask=observed)
        del pred, y_raw, observed, persist
        rows.append(
            {
                "fold": fold,
                "cell": model.config["cell"],
                "n_train_users": int(len(tr_u)),
                "n_val_users": int(len(va_u)),
                "n_train_windows": len(tr),
                "n_val_windows": len(va),
                "train_loss": hist.train_loss[-1],
                "val_mae": m["mae"],
                "val_rmse": m["rmse"],
                "persistence_mae": pm["mae"],
                "persistence_rmse": pm["rmse"],
                "seconds": time.perf_counter() - t0,
            }
        )
        del tr, va
        if return_forecasts:
            every = build_windows(panel, fstats, seq_length=seq_length, horizon=horizon, users=va_u, with_target=False,
                                  pad_start=pad_start, name=f"the validation users of fold {fold + 1}/{n_folds}")
            # kept compact (keys per window, [n, H] forecasts) until the long table is built once
            oof.append((every.key_arrays("user_id", "category", "origin_day"),
                        predict_interest(model, every, tstats, device=device, num_threads=num_threads), fold))
            del every
        if return_models:
            members.append((model, fstats, tstats))
    table = pd.DataFrame(rows)
    out = (table,)
    if return_forecasts:
        folds_rows = [(f, p.shape[0] * horizon) for _, p, f in oof]
        parts = [(k, p) for k, p, _ in oof]
        oof.clear()  # the parts list is the only holder now: each fold's arrays go as soon as they are copied
        ff = _long_forecasts(parts, with_day=True)
        ff["fold"] = np.repeat(np.array([f for f, _ in folds_rows], dtype=np.int64), [n for _, n in folds_rows])
        out += (ff,)
    if return_models:
        out += (FoldEnsemble(members, seq_length=seq_length, horizon=horizon),)
    return out[0] if len(out) == 1 else out


def _count_origins(panel: pd.DataFrame, folds, seq_length: int, pad_start: bool) -> int:
    """Forecast origins (``with_target=False`` windows) of the folds' validation users, from pair lengths."""
    users = np.concatenate([np.asarray(va, dtype=np.int64).ravel() for _, va in folds])
    rows = panel.loc[np.isin(panel["user_id"].to_numpy(), users), list(PAIR_COLS)]
    lengths = rows.groupby(list(PAIR_COLS), sort=False).size().to_numpy()
    lead = 0 if pad_start else int(seq_length) - 1
    return int(np.clip(lengths - lead, 0, None).sum())


class FoldEnsemble:
    """The cross-validation's fold models as one forecaster: the mean of their forecasts.

    The article's FAQ suggests ensembles; the fold models come for free with cross-validation.
    Each member keeps the feature and target transforms fitted on its own training users, so
    each builds its own (identically ordered) windows. ``predict(panel, users)`` returns the
    members' mean forecast in interest units, ``[n_windows, horizon]``, and the windows' meta;
    ``predict_members`` every member's forecast, to compare one model with the ensemble.

    Notebook 03b.
    """

    def __init__(self, members, *, seq_length: int, horizon: int):
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = list(members)
        self.seq_length, self.horizon = int(seq_length), int(horizon)

    def __len__(self) -> int:
        return len(self.members)

    def predict_members(self, panel: pd.DataFrame, users, *, device: str = "auto"):
        preds, meta, ref = [], None, None
        for model, fstats, tstats in self.members:
            w = build_windows(panel, fstats, tstats, seq_length=self.seq_length, horizon=self.horizon, users=users,
                              name="the ensemble's users")
            keys = w.meta[["user_id", "category", "origin_day"]].reset_index(drop=True)
            if ref is None:
                ref, meta = keys, w.meta
            elif not keys.equals(ref):
                raise RuntimeError("the members' windows are not aligned (the panel changed between members?)")
            preds.append(predict_interest(model, w, tstats, device=device))
        return preds, meta

    def predict(self, panel: pd.DataFrame, users, *, device: str = "auto"):
        preds, meta = self.predict_members(panel, users, device=device)
        return np.mean(preds, axis=0), meta


def permutation_importance(model: nn.Module, windows: WindowSet, target_transform: Standardizer, *,
                           n_repeats: int = 3, seed: int = 0, device: str = "auto") -> pd.DataFrame:
    """How much the forecast error grows when one input feature is scrambled.

    For each feature, its values are shuffled across windows (whole 14-day sequences move
    together, so the within-window shape stays realistic but no longer belongs to the pair), and
    the MAE against the observed target (outage days excluded) is recomputed.  The increase over
    the intact MAE is the feature's importance: large means the forecast leans on it.  A model
    explanation, not a causal claim: correlated features share credit.

    Returns ``feature, mae_increase, mae_increase_sd`` sorted by importance, with the intact MAE
    in ``attrs["baseline_mae"]``.

    Notebooks 03 and 03b.
    """
    if windows.y_raw is None:
        raise ValueError("permutation_importance needs windows with targets (with_target=True)")
    n_repeats = _pos_int("n_repeats", n_repeats)
    mask = windows.target_observed
    base = regression_metrics(windows.y_raw, predict_interest(model, windows, target_transform, device=device), mask)["mae"]
    rng = np.random.default_rng(seed)
    X = windows.X
    rows = []
    for j, name in enumerate(windows.feature_columns):
        incs = []
        for _ in range(n_repeats):
            perm = torch.from_numpy(rng.permutation(len(windows)))
            Xp = X.clone()
            Xp[:, :, j] = X[perm][:, :, j]
            pred = predict_interest(model, Xp, target_transform, device=device)
            incs.append(regression_metrics(windows.y_raw, pred, mask)["mae"] - base)
        rows.append({"feature": name, "mae_increase": float(np.mean(incs)), "mae_increase_sd": float(np.std(incs))})
    out = pd.DataFrame(rows).sort_values("mae_increase", ascending=False, ignore_index=True)
    out.attrs["baseline_mae"] = base
    return out


def fine_tune(model: nn.Module, train, val=None, *, epochs: int = 3, learning_rate: float = 1e-3, **kwargs):
    """Keep a trained model up to date: continue training a **copy** on new windows.

    The incremental update of the article's last step: instead of retraining from scratch when
    new days arrive, start from the current weights and train a few epochs on the new windows
    (usually with a smaller learning rate).  The original model is left untouched, so the two
    can be compared.  ``kwargs`` go to :func:`train_model`.  Returns ``(new_model, history)``.

    Notebooks 03 and 03b.
    """
    import copy

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    new = copy.deepcopy(model)
    history = train_model(new, train, val, epochs=epochs, learning_rate=learning_rate, **kwargs)
    return new, history
