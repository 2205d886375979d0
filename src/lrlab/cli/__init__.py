"""The ``lrlab`` command line: parse, call, print."""
