"""``python -m benchmarks.peers PEER 'SPEC_JSON'`` prints one peer's result as JSON;
``python -m benchmarks.peers --selftest`` runs the checks in ``_selftest``.

Example:
    python -m benchmarks.peers fastai '{"dataset": "mnist1d", "model": "cnn1d",
        "optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "batch_size": 100,
        "seed": 0}'
"""

from __future__ import annotations

import json
import sys

from . import PEERS, PeerError, peer_suggestions

USAGE = f"usage: python -m benchmarks.peers {{{'|'.join(PEERS)}}} SPEC_JSON | --selftest"


def main(argv: list[str]) -> int:
    if argv == ["--selftest"]:
        from ._selftest import selftest

        return selftest()
    if len(argv) != 2 or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        spec = json.loads(argv[1])
        result = peer_suggestions(argv[0], spec)
    except json.JSONDecodeError as exc:
        print(f"error: SPEC_JSON is not JSON: {exc}", file=sys.stderr)
        return 2
    except (TypeError, ValueError, PeerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if not isinstance(exc, PeerError) else 1
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
