"""Access to the authors' standalone MTLA module (PyPI package `mtla`, file mtla/MTLA.py).

The package's __init__ also imports a Hugging Face port (and with it `transformers`, several
seconds); only MTLA.py is needed, so it is loaded by file from the installed package. Its
import prints a note about an optional flash-attention build to stdout; that is swallowed.
Nothing from the package is copied into this repository.
"""
import contextlib
import functools
import importlib.util
import io
import pathlib


@functools.lru_cache(maxsize=None)
def mtla_module():
    spec = importlib.util.find_spec("mtla")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the authors' package is not installed: pip install mtla")
    path = pathlib.Path(list(spec.submodule_search_locations)[0]) / "MTLA.py"
    mod_spec = importlib.util.spec_from_file_location("mtla_authors_standalone", path)
    mod = importlib.util.module_from_spec(mod_spec)
    with contextlib.redirect_stdout(io.StringIO()):
        mod_spec.loader.exec_module(mod)
    return mod


def mtla_class():
    """The authors' MultiheadTemporalLatentAttention class."""
    return mtla_module().MultiheadTemporalLatentAttention


def package_version():
    try:
        from importlib.metadata import version
        return version("mtla")
    except Exception:  # noqa: BLE001 - metadata is informative only
        return "unknown"
