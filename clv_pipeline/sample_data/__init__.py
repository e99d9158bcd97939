"""Seeded sample data: a realistic landing folder plus the ground truth to test the pipeline with.

See `clv_pipeline.sample_data.generator.generate_sample`; the simulated business is described in
`clv_pipeline.sample_data.catalog`.
"""

from clv_pipeline.sample_data.catalog import DEFAULT_END_DATE
from clv_pipeline.sample_data.generator import GROUND_TRUTH_FILE, generate_sample

__all__ = ["DEFAULT_END_DATE", "GROUND_TRUTH_FILE", "generate_sample"]
