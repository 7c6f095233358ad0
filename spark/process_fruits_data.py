"""spark-submit entry point of the fruits-features job.

    spark-submit [--py-files fruits_job.zip] spark/process_fruits_data.py --help

The job itself lives in the `fruits_job` package next to this file; see
docs/contract.md for its arguments and outputs.
"""

import sys

from fruits_job.job import main

if __name__ == "__main__":
    sys.exit(main())
