"""Silence Blender's C-level console output around renders."""
import contextlib
import os


@contextlib.contextmanager
def quiet_stdout():
    """Silence Blender's C-level 'Saved: ...' lines for the duration."""
    try:
        fd = os.dup(1)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(fd, 1)
        os.close(fd)
