# Image of the dev stack (docker-compose.yaml): Airflow with the project's pinned
# dependencies, plus a Java runtime so FRUITS_COMPUTE=local can run the Spark job
# inside the scheduler container, where LocalExecutor runs the tasks.
#
# Keep the tag's Airflow version equal to the apache-airflow pin in
# requirements.txt (tests/infra checks it): pip would otherwise up- or downgrade
# Airflow under the image's entrypoint.
FROM apache/airflow:3.3.2-python3.11

USER root
# Spark 3.5 runs on Java 8/11/17; 17 is what the local path was measured with.
# procps: pyspark's bin/load-spark-env.sh calls `ps`. man1: slim Debian images
# delete it, and OpenJDK's postinst has failed there without it.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")" /opt/java-17
# A fixed path: the JVM folder's name carries the CPU architecture.
ENV JAVA_HOME=/opt/java-17
# Spark's JVM packages (Delta Lake, s3a), checked by their SHA-256, where the local backend
# looks for them: <python prefix>/jars.
# The OpenLineage listener apart, in jars/lineage: only runs with lineage on load it.
COPY requirements-jvm.txt requirements-jvm-lineage.txt /tmp/fruits-features/
COPY scripts/fetch_jars.py /tmp/fruits-features/scripts/
RUN python /tmp/fruits-features/scripts/fetch_jars.py \
        --requirements /tmp/fruits-features/requirements-jvm.txt \
        "$(python -c 'import sys; print(sys.prefix)')/jars" \
    && python /tmp/fruits-features/scripts/fetch_jars.py \
        --requirements /tmp/fruits-features/requirements-jvm-lineage.txt \
        "$(python -c 'import sys; print(sys.prefix)')/jars/lineage"

USER airflow
COPY --chown=airflow:root requirements.txt constraints.txt /tmp/fruits-features/
RUN pip install --no-cache-dir \
        -r /tmp/fruits-features/requirements.txt \
        -c /tmp/fruits-features/constraints.txt
