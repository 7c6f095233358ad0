"""spark-submit entry point of the feature store's maintenance (OPTIMIZE, VACUUM).

    spark-submit --py-files fruits_job.zip spark/maintain_feature_store.py --help

See fruits_job/maintenance.py; the job zip (`make job-zip`) holds the code.
"""

import sys
from importlib.util import find_spec
from pathlib import Path

if find_spec("fruits_contract") is None:
    # Run from a checkout without the zip: the contract sits in the project's plugins/.
    sys.path.insert(1, str(Path(__file__).resolve().parents[1] / "plugins"))

from fruits_job.maintenance import main

if __name__ == "__main__":
    sys.exit(main())
