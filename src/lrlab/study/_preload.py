"""Imported once by the fork server that local worker processes are forked from: each
worker then starts with torch and the trainer imported and torch's first-optimizer cost
(its lazy import of torch._dynamo) already paid, instead of paying it after it starts."""

from lrlab.study.trainer import _warm_up

_warm_up()
