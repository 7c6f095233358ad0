"""The reference project's feature extraction, kept only as a benchmark baseline.

A Series pandas UDF that rebuilds MobileNetV2 from the broadcast weights on
every call and runs `predict` on one image at a time. Do not copy this.

    spark-submit bench/reference_pattern.py INPUT_DIR WEIGHTS IMAGE_SIZE RESULT_JSON
"""

import io
import json
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import ArrayType, FloatType


def main() -> None:
    input_dir, weights_path, size, result_path = sys.argv[1:5]
    size = int(size)
    spark = SparkSession.builder.appName("reference_pattern").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    with open(weights_path, "rb") as f:
        weights = spark.sparkContext.broadcast(f.read())

    @pandas_udf(ArrayType(FloatType()))
    def featurize(contents: pd.Series) -> pd.Series:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        from PIL import Image

        path = os.path.join(tempfile.mkdtemp(), "w.weights.h5")
        with open(path, "wb") as out:
            out.write(weights.value)
        model = keras.applications.MobileNetV2(
            input_shape=(size, size, 3), include_top=False, weights=None, pooling="avg"
        )
        model.load_weights(path)
        vectors = []
        for data in contents:
            img = Image.open(io.BytesIO(data)).convert("RGB").resize((size, size))
            x = np.asarray(img, dtype=np.float32)[None] / 127.5 - 1.0
            vectors.append(model.predict(x, verbose=0)[0])
        return pd.Series(vectors)

    images = (
        spark.read.format("binaryFile")
        .option("pathGlobFilter", "*.jpg")
        .option("recursiveFileLookup", "true")
        .load(f"{input_dir}/Training")
    )
    start = time.perf_counter()
    count = images.select(featurize("content").alias("f")).filter("size(f) = 1280").count()
    seconds = time.perf_counter() - start
    with open(result_path, "w") as out:
        json.dump({"images": count, "seconds": seconds}, out)
    spark.stop()


if __name__ == "__main__":
    main()
