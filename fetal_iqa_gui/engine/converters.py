"""Converting a torch model for a compiled CPU runtime: for OpenVINO from torch directly, for ONNX
Runtime through an ONNX export; and NNCF (OpenVINO's quantiser) kept quiet in the user's terminal."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

log = logging.getLogger(__name__)

# OpenVINO's converter traces torch modules through TorchScript, which torch now announces as going:
# the user can do nothing about it (set once at import: `catch_warnings` is not thread-safe)
warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace", category=FutureWarning)


def convert_for_openvino(module: torch.nn.Module):
    """The module as an OpenVINO model, converted from torch directly (no ONNX between: it took
    as long again and two more copies of the weights), any batch size."""
    import openvino as ov
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused kernel has no OpenVINO form either
    try:
        with torch.no_grad():
            return ov.convert_model(module, example_input=torch.zeros(2, 3, 224, 224),
                                    input=[ov.PartialShape([-1, 3, 224, 224])])
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)


def export_onnx(module: torch.nn.Module, path: Path) -> Path:
    """The module as ONNX (opset 18, any batch size), its weights in `path`.data beside it (saved
    in one piece, the model took two more copies of its weights in memory while saving)."""
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused kernel has no ONNX form
    try:
        example = torch.zeros(2, 3, 224, 224)
        batch = torch.export.Dim("batch", min=1, max=4096)
        with torch.no_grad():
            program = torch.onnx.export(module, (example,), dynamo=True, opset_version=18,
                                        dynamic_shapes=({0: batch},), verbose=False)
        assert program is not None  # dynamo=True returns the program (None is the legacy exporter's)
        program.save(str(path), external_data=True)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
        _forget_exported_graph()
    return path


def _forget_exported_graph() -> None:
    """onnxscript's default rewrite rules (0.7) keep the last graph they matched, and with it the
    module's weights: the full model's 1.2 GB stayed taken after export, through the conversion."""
    try:
        from onnxscript import rewriter
    except ImportError:
        return
    for rule in getattr(rewriter, "_DEFAULT_REWRITE_RULES", ()):
        matcher = getattr(rule, "_matcher", None)
        for name in ("_graph", "_current_node", "_match", "_tracer"):
            if hasattr(matcher, name):
                setattr(matcher, name, None)


@contextlib.contextmanager
def quiet_nncf():
    """NNCF with its progress bars (printed on standard output, into the CLI's own output) and its
    import's notes (torch's "No CUDA runtime is found") kept out of the user's terminal: they go to
    the log. Conversions run before scoring starts, when nothing else prints."""
    torch_notes = logging.getLogger("torch.utils.cpp_extension")
    level = torch_notes.level
    torch_notes.setLevel(logging.ERROR)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            import nncf
            nncf.set_log_level(logging.ERROR)
            yield nncf
    finally:
        torch_notes.setLevel(level)
        if printed.getvalue().strip():
            log.debug("NNCF printed: %s", printed.getvalue().strip()[-2000:])
