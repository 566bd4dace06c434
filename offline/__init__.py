"""offline: training and evaluation pipeline for rtag models."""
