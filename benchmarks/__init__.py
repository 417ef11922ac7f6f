"""Benchmarks (scripts; a package so that `benchmarks._embed_cache` wins over pysbd's top-level `benchmarks`)."""
