"""PyTorch float32 oracle for mtla-st: reads a model directory (docs/model-format.md) and runs
the whole model, fbank features to beam-search output. See README.md in this folder."""
from .model import SpeechTranslator
from .model_dir import ModelFormatError, load_model_dir, write_model_dir

__all__ = ["SpeechTranslator", "ModelFormatError", "load_model_dir", "write_model_dir"]
