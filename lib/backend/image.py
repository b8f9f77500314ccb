"""Writing a disk image onto a disk (``get_image_size`` and
``blockdev_image``), for the helper VM of ``gnt-backup export
--zero-free-space``: the master adds a temporary disk to the stopped
instance, has the cluster's zeroing image written onto it here, and boots
the instance from it.

An image is an absolute path to a regular file on this node (below the
node's root on a virtual cluster) or an
``http://``, ``https://`` or ``ftp://`` URL. A file is copied with
:func:`ganeti.backend.convert.CopyData`; a URL's body is streamed in 1 MiB
blocks and must be as long as the server announced. The image is written
from the start of the disk, zeros included (the disk may hold old data),
and flushed; the disk is shut down again whatever happens.
"""

from __future__ import annotations

import http.client
import logging
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ganeti.backend import Fail
from ganeti.backend import convert
from ganeti.backend import storage as backend_storage
from ganeti.storage import filestorage

#: URL schemes an image may use
URL_SCHEMES = ("http", "https", "ftp")
#: Seconds a URL's server may take to answer (each connect or read)
URL_TIMEOUT = 60
MIB = 1024 * 1024

# What urllib raises for a bad URL, a failed connection or a broken answer
_URL_ERRORS = (OSError, ValueError, http.client.HTTPException)


def _IsUrl(image: str) -> bool:
    return urllib.parse.urlsplit(image).scheme.lower() in URL_SCHEMES


def _CheckImage(image: Any) -> None:
    """Fail unless ``image`` is an absolute path or a URL of a known scheme."""
    if not isinstance(image, str) or not image:
        Fail("Invalid image %r: expected an absolute path or an http, https or"
             " ftp URL", image)
    if _IsUrl(image):
        return
    if "://" in image:
        Fail("Unsupported URL scheme in image '%s': only %s are allowed", image,
             ", ".join(URL_SCHEMES))
    if not os.path.isabs(image):
        Fail("Image '%s' is neither an absolute path nor an http, https or ftp URL",
             image)


def _LocalFile(image: str) -> str:
    """The file's path on this node (a virtual node's root in front)."""
    return filestorage.LocalizePath(image)


def _FileSize(image: str) -> int:
    try:
        st = os.stat(_LocalFile(image))
    except OSError as err:
        Fail("Cannot access the image '%s': %s", image, err.strerror or err)
    if not stat.S_ISREG(st.st_mode):
        Fail("Image '%s' is not a regular file", image)
    return st.st_size


def _Length(image: str, response: Any) -> int:
    """The length a URL's server announced for the image, or fail."""
    value = response.headers.get("Content-Length")
    try:
        length = int(value)
    except (TypeError, ValueError):
        Fail("The server of image '%s' does not say its size (Content-Length %r)",
             image, value)
    if length < 0:
        Fail("The server of image '%s' announced an invalid size %d", image, length)
    return length


def _OpenUrl(image: str, method: str = "GET") -> Any:
    """urlopen ``image``, failing with a message naming it."""
    request = urllib.request.Request(image, method=method)
    try:
        return urllib.request.urlopen(request, timeout=URL_TIMEOUT)
    except urllib.error.HTTPError as err:
        err.close()
        Fail("Cannot get the image '%s': HTTP error %d %s", image, err.code, err.reason)
    except urllib.error.URLError as err:
        Fail("Cannot get the image '%s': %s", image, err.reason)
    except _URL_ERRORS as err:
        Fail("Cannot get the image '%s': %s", image, err)


def GetImageSize(image: str) -> int:
    """The size in bytes of ``image``: a regular file on this node (absolute
    path) or an http, https or ftp URL (the length its server announces)."""
    _CheckImage(image)
    if not _IsUrl(image):
        return _FileSize(image)
    # FTP has no HEAD: opening the file tells its length
    method = "HEAD" if image.lower().startswith(("http:", "https:")) else "GET"
    with _OpenUrl(image, method) as response:
        return _Length(image, response)


def _CheckFits(image: str, image_size: int, size: int) -> None:
    if image_size > size * MIB:
        Fail("Image '%s' (%d bytes) does not fit on the disk of %d MiB (%d bytes)",
             image, image_size, size, size * MIB)


def _Write(image: str, response: Any, dev_path: str, image_size: int) -> int:
    """Copy the image (from ``response`` for a URL) to ``dev_path``."""
    try:
        if response is not None:
            written = convert.CopyStream(response.read, dev_path, image_size, sparse=False)
        else:
            written = convert.CopyData(_LocalFile(image), dev_path, image_size,
                                       sparse=False)
    except _URL_ERRORS as err:
        Fail("Writing the image '%s' to %s failed: %s", image, dev_path, err)
    if written < image_size:
        Fail("Image '%s' ended after %d of %d bytes; %s is incomplete", image,
             written, image_size, dev_path)
    return written


def BlockdevImage(disk_dict: Any, image: str, size: int) -> int:
    """Write ``image`` (as for :func:`GetImageSize`) from the start of the
    disk ``disk_dict``, whose size is ``size`` MiB; return the bytes
    written. The image must fit on the disk."""
    disk = backend_storage.DiskFromDict(disk_dict)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        Fail("Invalid size %r of the disk %s", size, backend_storage._Describe(disk))
    _CheckImage(image)
    response = None
    dev = None
    try:
        if _IsUrl(image):
            response = _OpenUrl(image)
            image_size = _Length(image, response)
        else:
            image_size = _FileSize(image)
        _CheckFits(image, image_size, size)
        dev = convert.Assemble(disk, "target")
        assert dev.dev_path is not None
        logging.info("Writing image %s (%d bytes) to %s (%s)", image, image_size,
                     backend_storage._Describe(disk), dev.dev_path)
        written = _Write(image, response, dev.dev_path, image_size)
    finally:
        if response is not None:
            response.close()
        convert.ShutdownDevice(dev, disk)
    logging.info("Wrote %d bytes of image %s to %s", written, image, dev.dev_path)
    return written
