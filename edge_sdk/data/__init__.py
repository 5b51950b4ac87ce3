"""Labelled text data for building and benchmarking."""

from .loaders import DataError, LabelledData, Split, load_data

__all__ = ["DataError", "LabelledData", "Split", "load_data"]
