"""A scored case and what a reviewer does with it: selection, calipers, exports, the report."""
