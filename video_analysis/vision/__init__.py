"""Pure computation on pixels and numbers: decoding, probing, detectors, tracking, attributes, embedding models."""
