"""Small driver-side file operations through Hadoop's FileSystem API.

The same calls work on local paths, file:/ and s3:// (EMRFS) URIs, so the job
needs no boto3 and no special case for where it runs.
"""

from __future__ import annotations

from pyspark.sql import SparkSession


def _fs_and_path(spark: SparkSession, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def exists(spark: SparkSession, uri: str) -> bool:
    fs, path = _fs_and_path(spark, uri)
    return bool(fs.exists(path))


def is_non_empty_dir(spark: SparkSession, uri: str) -> bool:
    fs, path = _fs_and_path(spark, uri)
    if not fs.exists(path):
        return False
    return not fs.getFileStatus(path).isDirectory() or len(fs.listStatus(path)) > 0


def qualify(spark: SparkSession, uri: str) -> str:
    """Absolute, scheme-qualified form of a path (`file:/...` for local paths)."""
    fs, path = _fs_and_path(spark, uri)
    return str(fs.makeQualified(path).toString())


def write_text(spark: SparkSession, uri: str, text: str) -> None:
    fs, path = _fs_and_path(spark, uri)
    out = fs.create(path, True)
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()


def read_text(spark: SparkSession, uri: str) -> str:
    fs, path = _fs_and_path(spark, uri)
    stream = fs.open(path)
    try:
        reader = spark.sparkContext._jvm.java.io.InputStreamReader(stream, "UTF-8")
        return spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toString(reader)
    finally:
        stream.close()


def write_text_atomically(spark: SparkSession, uri: str, text: str) -> None:
    """Readers see the whole file or none: written aside, then renamed (a single PUT on S3)."""
    fs, path = _fs_and_path(spark, uri)
    partial = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(
        path.getParent(), f".{path.getName()}.partial"
    )
    write_text(spark, str(partial), text)
    if not fs.rename(partial, path):
        fs.delete(partial, False)
        raise OSError(f"cannot write {uri} (rename of its partial copy failed)")


def list_files(spark: SparkSession, folder_uri: str) -> list[str]:
    """URIs of the files directly in a folder (none when it does not exist)."""
    fs, path = _fs_and_path(spark, folder_uri)
    if not fs.exists(path):
        return []
    return [str(status.getPath().toString()) for status in fs.listStatus(path) if status.isFile()]


def list_folders(spark: SparkSession, folder_uri: str) -> list[str]:
    """URIs of the folders directly in a folder (none when it does not exist)."""
    fs, path = _fs_and_path(spark, folder_uri)
    if not fs.exists(path):
        return []
    return [str(s.getPath().toString()) for s in fs.listStatus(path) if s.isDirectory()]
