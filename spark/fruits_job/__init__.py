"""MobileNetV2 features + MLlib PCA over Fruits-360 images, as one PySpark job.

This package is shipped to the cluster with `--py-files` and imported by the
Python workers, so it must not import anything from the Airflow side.
"""
