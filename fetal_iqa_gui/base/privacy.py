"""No usage reports: the libraries the app loads that would report how they are used are told not
to, before any of them is imported (`no_telemetry`, run when the package is imported).

- OpenVINO and NNCF send usage events through the `openvino_telemetry` package, on by default, and
  write a client id under the user's home (`~/intel/`). Both import it inside a try/except
  ImportError and fall back to a stub: a `None` entry in `sys.modules` makes that import fail, so
  neither reports nor writes anything.
- Ray reports cluster usage unless RAY_USAGE_STATS_ENABLED is 0.
- Hugging Face's libraries (peft brings them in training) send telemetry with downloads unless
  HF_HUB_DISABLE_TELEMETRY is set; the app downloads nothing, and they are told so too.
- DO_NOT_TRACK=1 is the cross-tool convention (https://consoledonottrack.com) some others follow.
A user's own environment settings are kept where they are stricter or already chosen."""

from __future__ import annotations

import os
import sys

BLOCKED_MODULES = ("openvino_telemetry",)
ENVIRONMENT = {"RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1",
               "DO_NOT_TRACK": "1"}


def no_telemetry() -> None:
    """Turn off every dependency's usage reporting, for this process and the workers it starts."""
    for name in BLOCKED_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # `import` now raises ImportError
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
