"""ExtStorage providers on the node (the ``extstorage_diagnose`` call).

Providers are found along ``pathutils.ES_SEARCH_PATH`` and checked by
:func:`ganeti.storage.extstorage.LoadProvider`, as OS definitions are by
:mod:`ganeti.backend.os`. A provider name found in several directories is
reported once per directory, the one the node uses first.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from ganeti import objects, pathutils, utils
from ganeti.storage import extstorage


def DiagnoseExtStorage(top_dirs: Sequence[str] | None = None) -> list[list[Any]]:
    """Every provider found: ``[name, path, status, diagnose, parameters]``
    (Ganeti's fields; ``parameters`` is ``[[name, doc], ...]``, empty for an
    invalid provider)."""
    result: list[list[Any]] = []
    for directory in top_dirs if top_dirs is not None else pathutils.ES_SEARCH_PATH:
        try:
            names = utils.ListVisibleFiles(directory)
        except FileNotFoundError:
            continue
        except (OSError, NotADirectoryError) as err:
            logging.warning("Cannot list ExtStorage directory %s: %s", directory, err)
            continue
        for name in names:
            path = os.path.join(directory, name)
            if not os.path.isdir(path):
                continue
            ok, value = extstorage.TryLoadProvider(name, base_dir=directory)
            if ok:
                assert isinstance(value, objects.ExtStorage)
                result.append([name, path, True, "", value.supported_parameters])
            else:
                result.append([name, path, False, value, []])
    return result


__all__ = ["DiagnoseExtStorage"]
