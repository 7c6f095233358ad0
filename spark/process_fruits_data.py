"""spark-submit entry point of the fruits-features job.

    spark-submit --py-files fruits_job.zip spark/process_fruits_data.py --help

The job lives in the `fruits_job` package next to this file and imports the contract it
shares with the Airflow side (`fruits_contract`, in plugins/); the job zip (`make job-zip`)
holds both. See docs/contract.md for its arguments and outputs.
"""

import sys
from importlib.util import find_spec
from pathlib import Path

if find_spec("fruits_contract") is None:
    # Run from a checkout without the zip: the contract sits in the project's plugins/.
    sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "plugins"))

from fruits_job.job import main

if __name__ == "__main__":
    sys.exit(main())
