"""Downloads and unpacks an image build context (init container of up-challenge-template).

CONTEXT_URL points at a gzip- (or plain-) compressed tar archive that fctf serves under a
short-lived signed URL. The archive is streamed to disk with a size cap and unpacked with the
`data` extraction filter (no absolute paths, no `..`, no links leaving the tree, no device
files), then the Dockerfile must exist inside it. The URL's query (the download token) is never
printed.

Environment: CONTEXT_URL, DEST (default /workspace/context), DOCKERFILE (default Dockerfile,
relative to the context root), MAX_BYTES (default 536870912).
"""

import os
import posixpath
import shutil
import sys
import tarfile
import urllib.parse
import urllib.request

CHUNK = 1 << 20


class ContextError(Exception):
    """The context cannot be used."""


def redacted(url):
    """The URL without query or credentials, for logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def check_dockerfile_path(dockerfile):
    """A relative path inside the context, normalised; raises ContextError otherwise."""
    normalised = posixpath.normpath(dockerfile)
    if not dockerfile or posixpath.isabs(normalised) or normalised == ".." or normalised.startswith("../"):
        raise ContextError(f"dockerfile path {dockerfile!r} must be relative to the context root")
    return normalised


def download(url, target, max_bytes, timeout=60):
    """Streams url into target, refusing more than max_bytes; returns the byte count."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ContextError("the context URL must be http or https")
    written = 0
    with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
        while True:
            chunk = response.read(CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > max_bytes:
                raise ContextError(f"the build context is larger than {max_bytes} bytes")
            out.write(chunk)
    return written


def unpack(archive, dest):
    """Unpacks a tar archive (any compression) into dest with the `data` filter."""
    if not hasattr(tarfile, "data_filter"):
        raise ContextError("this Python has no tarfile extraction filters (3.12+, or 3.8-3.11 with the 2023 backport)")
    os.makedirs(dest, exist_ok=True)
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            tar.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as error:
        raise ContextError(f"cannot unpack the build context: {error}") from None


def main():
    url = os.environ["CONTEXT_URL"]
    dest = os.environ.get("DEST", "/workspace/context")
    dockerfile = check_dockerfile_path(os.environ.get("DOCKERFILE", "Dockerfile"))
    max_bytes = int(os.environ.get("MAX_BYTES", "536870912"))
    archive = dest.rstrip("/") + ".tar"
    print(f"fetching build context from {redacted(url)}")
    size = download(url, archive, max_bytes)
    unpack(archive, dest)
    os.remove(archive)
    if not os.path.isfile(os.path.join(dest, dockerfile)):
        shutil.rmtree(dest, ignore_errors=True)
        raise ContextError(f"the build context has no {dockerfile}")
    print(f"build context ready: {size} bytes, dockerfile {dockerfile}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ContextError, OSError) as failure:
        print(f"error: {failure}", file=sys.stderr)
        sys.exit(1)
