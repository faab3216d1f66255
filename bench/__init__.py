"""Benchmarks of the toolkit against its floors (``invoke bench``); needs a checkout."""
