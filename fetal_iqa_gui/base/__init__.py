"""The bottom floor: errors, safe file writing, text helpers, and where files live."""
