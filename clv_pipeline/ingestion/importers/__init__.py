"""Importers that turn published data sets into the landing layout of PRODUCT.md §2.

- `import_intendo` — the "Super Jetroid" mobile game tables of the R package *intendo*.
- `import_cdnow` — the CDNOW music retailer purchases (CDNOW_master.txt / CDNOW_sample.txt).

Each writes `<landing>/<source>/<YYYY-MM-DD delivery date>/<file>.csv` and returns a summary with the
number of rows written per source.
"""

from clv_pipeline.ingestion.importers.cdnow import import_cdnow
from clv_pipeline.ingestion.importers.intendo import import_intendo

__all__ = ["import_cdnow", "import_intendo"]
