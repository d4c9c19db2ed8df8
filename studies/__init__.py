"""Studies: the top of the data flow. Each one builds data, trains its arms, runs the evaluations and writes a report.

- ``pcfg``: the synthetic study (``metacond pcfg-study``).
- ``localization``: the geo-tagged news study (``metacond localization-study``).
- ``stats``: paired differences, seed-aware intervals and verdict words shared by both.
- ``rerun``: two runs of one study side by side (``metacond compare-runs``).
"""
