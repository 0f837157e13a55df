"""The interest forecaster (notebooks 03, 03b, 09): ``features`` (scaling), ``sequences`` (windows and
splits), ``models`` (LSTM/GRU/RNN), ``train`` (loop, cross-validation), ``checkpoints``, ``baselines``
(persistence, moving average, exponential fit, linear AR), ``distributed`` (DDP)."""
