"""Compute backends: where the Spark job of a run executes.

A backend is one module that owns:

- ``settings``: its group of settings (``config.SettingsGroup``), read like every other;
- ``plan_section(config, plan)``: what it adds to the run plan, a pure function of the
  settings and the run (e.g. EMR's cluster request and step);
- ``segment(plan)``: its tasks in the DAG, returned as a ``Segment`` for the DAG to wire
  between ``upload_artifacts`` and ``download_outputs``;
- ``report_section(plan, **inputs)``: what it tells the run report, as data
  (``facts.ComputeFacts``, e.g. EMR's cluster and cost).

The DAG picks one by the ``FRUITS_COMPUTE`` setting; adding a backend is one module and one
line in ``registry.BACKENDS``.
"""
