"""Data sets as typed records: load ChEBI-20 / PubChem324k files (TSV, JSONL, Parquet), report
bad rows with file and line, write records back out, and download the public releases.

    from ray_icma.data import load_records, read_split
    result = read_split("chebi20", "test", root="../shared/data")
    print(result.summary())          # ...: 3300 rows read, 3300 loaded, 0 skipped
"""
from ray_icma.data.download import DownloadError, download_dataset, download_file
from ray_icma.data.loader import load_records
from ray_icma.data.problems import PROBLEM_KINDS, DataError, LoadResult, Problem
from ray_icma.data.records import MoleculeRecord
from ray_icma.data.registry import DATASETS, DatasetSpec, RemoteFile
from ray_icma.data.splits import read_split, split_path
from ray_icma.data.writers import write_records

__all__ = [
    "DATASETS",
    "PROBLEM_KINDS",
    "DataError",
    "DatasetSpec",
    "DownloadError",
    "LoadResult",
    "MoleculeRecord",
    "Problem",
    "RemoteFile",
    "download_dataset",
    "download_file",
    "load_records",
    "read_split",
    "split_path",
    "write_records",
]
