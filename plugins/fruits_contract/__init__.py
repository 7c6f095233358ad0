"""What the Airflow side and the Spark job agree on, in one place: modes, the input rule,
engine names, the output layout and the job's command line.

Dependency-free (the standard library only) and free of I/O: the Airflow side imports it
from ``plugins/``, and the job ships it in its zip (``--py-files``) beside ``fruits_job``.
"""
