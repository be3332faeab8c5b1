"""The engine: which device, precision and backend (`settings`, `choice`, `cpu`), the scoring
generator (`scoring`), compiled CPU backends (`compiled`, `int8`), model input (`preprocess`) and
the disk caches (`cache`)."""
