"""Measurements and pictures that notebooks need beyond training: one module per notebook topic.

- :mod:`.pdd`: notebook 06, scores per domain, improvements over the generalist, colour error,
  low-level feature clouds and their distance.
"""
