"""Small helpers that turn stage results into Dagster UI metadata."""


import base64

from dagster import MetadataValue


def jpeg_markdown(jpeg: bytes, alt: str = "thumbnail") -> MetadataValue:
    """A few-KB JPEG shown inline in the asset's materialization details."""
    encoded = base64.b64encode(jpeg).decode("ascii")
    return MetadataValue.md(f"![{alt}](data:image/jpeg;base64,{encoded})")
