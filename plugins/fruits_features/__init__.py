"""Airflow side of fruits-features: configuration, run plan, EMR/local compute tasks, checks.

Nothing here imports the Spark job package (``spark/fruits_job``): the two sides only share
the command line and output layout written in ``docs/contract.md``.
"""
