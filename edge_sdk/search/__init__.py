"""Searches over the build's knobs with Optuna: storage (one machine or many workers), the study
loop, and `edge-sdk autotune` / `edge-sdk prune`."""
