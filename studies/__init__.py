"""Studies: the top of the data flow. Each one builds data, trains its arms, runs the evaluations and writes a report.

- ``pcfg``: the synthetic study (``metacond pcfg-study``).
- ``localization``: the geo-tagged news study (``metacond localization-study``).
- ``report_kit``: the findings registry, verdict tables, forest figure and README table both reports use (the statistics
  under them are ``metacond.eval_tasks.stats``).
- ``rerun``: two runs of one study side by side (``metacond compare-runs``).
"""
