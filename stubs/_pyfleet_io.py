"""Line-prefixing text streams, so N interpreters can share one terminal.

pyfleet-exec gives each interpreter's sys.stdout/sys.stderr a prefix:

    import sys, _pyfleet_io
    sys.stdout = _pyfleet_io.PrefixWriter(sys.__stdout__, "[0] ")
    print("hi")            # -> "[0] hi" on the process's stdout

Whole lines are written with one write() + flush(), so lines of different interpreters
do not interleave mid-line.
"""

import io


class PrefixWriter(io.TextIOBase):
    def __init__(self, stream, prefix):
        self._stream = stream
        self._prefix = prefix
        self._pending = ""

    @property
    def encoding(self):
        return getattr(self._stream, "encoding", "utf-8")

    def writable(self):
        return True

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        data = self._pending + text
        lines = data.split("\n")
        self._pending = lines.pop()
        if lines:
            self._stream.write("".join(self._prefix + line + "\n" for line in lines))
            self._stream.flush()
        return len(text)

    def flush(self):
        if self._pending:
            self._stream.write(self._prefix + self._pending)
            self._pending = ""
        self._stream.flush()

    def isatty(self):
        return False
