"""Running cases: one case job (`job`), batch runs, Ray workers, the review worklist."""
