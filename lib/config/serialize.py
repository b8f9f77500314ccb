"""Writing the configuration's JSON text fast: one cached text per object.

Every change of the configuration writes the whole file. With thousands of
instances, turning every object into plain data and JSON again on each
save (about 0.2 s for 10,000 instances) was most of what a change cost the
master. :class:`ConfigSerializer` keeps the JSON text of each instance and
disk and reuses it while the stored object is the same one, with the same
``serial_no`` and ``mtime``. That holds because the configuration writer
either stores a new object (``Update`` stores a copy; adding stores a copy)
or bumps ``serial_no`` and ``mtime`` of any object it changes in place.

The result is exactly :func:`serializer.DumpJson` of ``data.ToDict()``
(keys sorted, compact separators, a final newline). With the environment
variable ``GANETI_CHECK_CONFIG_CACHE`` set to 1 (the test suites set it)
every save also serialises the slow way and raises ProgrammerError,
naming the object, when the two differ: a change made in place without a
serial bump would show there.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

from ganeti import errors, objects, serializer

__all__ = ["ConfigSerializer", "CHECK_ENV"]

#: the environment variable that turns the check of every save on
CHECK_ENV = "GANETI_CHECK_CONFIG_CACHE"

#: the sections whose objects' texts are cached (the ones that grow with
#: the number of instances)
_CACHED_SECTIONS = ("instances", "disks")

_Entry = tuple[Any, int, Any, str]   # (object, serial_no, mtime, text)


class ConfigSerializer:
    """Serialises a ConfigData, reusing the text of unchanged objects.

    Not thread-safe: the configuration writer calls it with its lock held.
    """

    def __init__(self, check: bool | None = None) -> None:
        self._texts: dict[str, dict[str, _Entry]] = {
            section: {} for section in _CACHED_SECTIONS}
        self._check = os.environ.get(CHECK_ENV) == "1" if check is None else check
        # Stands for a section's text in the rest of the document; cannot
        # occur in a configuration by chance
        self._marker = f"@config-section-{secrets.token_hex(16)}@"
        #: objects serialised anew by the last Dump (for tests)
        self.last_misses = 0

    def _SectionText(self, section: str, objs: dict[str, Any]) -> str:
        cache = self._texts[section]
        fresh: dict[str, _Entry] = {}
        parts = []
        encode = serializer._ENCODER.encode  # the format of DumpJson
        for uuid in sorted(objs):
            obj = objs[uuid]
            entry = cache.get(uuid)
            if entry is None or entry[0] is not obj or entry[1] != obj.serial_no \
                    or entry[2] != obj.mtime:
                entry = (obj, obj.serial_no, obj.mtime, encode(obj.ToDict()))
                self.last_misses += 1
            fresh[uuid] = entry
            parts.append(f"{encode(uuid)}:{entry[3]}")
        self._texts[section] = fresh  # forgets removed objects
        return "{" + ",".join(parts) + "}"

    def Dump(self, data: objects.ConfigData) -> str:
        """The JSON text of ``data``, as ``DumpJson(data.ToDict())``."""
        self.last_misses = 0
        # Everything but the cached sections the usual way, with a marker
        # string in their place
        shallow = objects.ConfigData(**{
            name: getattr(data, name) for name in data.GetAllFields()})
        sections: dict[str, str] = {}
        for section in _CACHED_SECTIONS:
            objs = getattr(data, section)
            if objs is None:
                continue
            if type(objs) is not dict:
                raise errors.ProgrammerError(
                    f"Configuration section {section} is not a dict")
            sections[section] = self._SectionText(section, objs)
            setattr(shallow, section, f"{self._marker}{section}")
        text = serializer.DumpJson(shallow.ToDict())
        for section, section_text in sections.items():
            text = text.replace(f'"{self._marker}{section}"', section_text, 1)
        if self._check:
            self._Check(data, text)
        return text

    def _Check(self, data: objects.ConfigData, text: str) -> None:
        expected = serializer.DumpJson(data.ToDict())
        if text == expected:
            return
        culprit = "the configuration"
        for section in _CACHED_SECTIONS:
            for uuid, obj in (getattr(data, section) or {}).items():
                entry = self._texts[section].get(uuid)
                if entry is not None and \
                        entry[3] != serializer._ENCODER.encode(obj.ToDict()):
                    culprit = (f"{section[:-1]} {getattr(obj, 'name', None) or uuid}"
                               f" (serial {obj.serial_no})")
                    break
        raise errors.ProgrammerError(
            f"Cached serialisation of {culprit} differs from the object: it"
            " was changed in place without a serial number bump")
