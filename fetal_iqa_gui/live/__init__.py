"""Live mode: a scanner's video (or a file played as one) scored while it is recorded, Qt-free."""
