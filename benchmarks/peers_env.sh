#!/usr/bin/env bash
# Install the peer LR finders that benchmarks/peers runs; idempotent, silent unless pip fails.
#
#   torch-lr-finder, pytorch-lightning==2.6.6 -> the dev venv (default: <repo>/.venv), with a
#                                                constraint holding the torch already there
#   torch==2.14.1, torchvision==0.29.1, fastai==2.8.12, lrlab (editable, --no-deps) and
#   lrlab's light deps                        -> its own venv (default /work/peer-venvs/fastai)
#
# Places: LRLAB_DEV_VENV, LRLAB_FASTAI_VENV. A re-run checks installed versions (no imports,
# a few seconds) and prints them. Usage: bash benchmarks/peers_env.sh
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd -P)
dev_venv=${LRLAB_DEV_VENV:-$repo/.venv}
fastai_venv=${LRLAB_FASTAI_VENV:-/work/peer-venvs/fastai}

# Every pin is spelled once, here.
dev_reqs=("torch-lr-finder" "pytorch-lightning==2.6.6")
fastai_torch=("torch==2.14.1" "torchvision==0.29.1")
fastai_req="fastai==2.8.12"
lrlab_light_deps=(numpy matplotlib rich typer pydantic scikit-learn)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

pipq() { # pipq PY ARGS...: pip install, silent unless it fails; then its log without the
    #                    find-links noise this machine's pip config prints
    local py=$1
    shift
    if ! "$py" -m pip install --quiet --disable-pip-version-check --no-input "$@" \
        >"$tmp/pip.log" 2>&1; then
        grep -v "is ignored: it is neither a file nor a directory" "$tmp/pip.log" >&2 || true
        echo "peers_env.sh: pip install $* failed" >&2
        exit 1
    fi
}

satisfied() { # satisfied PY REQ...: every requirement is installed (metadata only, no import)
    local py=$1
    shift
    "$py" - "$@" >/dev/null 2>&1 <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
for req in sys.argv[1:]:
    name, _, pin = req.partition("==")
    try:
        have = version(name).split("+")[0]
    except PackageNotFoundError:
        sys.exit(1)
    if pin and have != pin:
        sys.exit(1)
EOF
}

# --- dev venv ------------------------------------------------------------------------------
[ -x "$dev_venv/bin/python" ] || {
    echo "peers_env.sh: no dev venv at $dev_venv (create it as the README says)" >&2
    exit 1
}
if ! satisfied "$dev_venv/bin/python" "${dev_reqs[@]}"; then
    dev_torch=$("$dev_venv/bin/python" -c \
        'from importlib.metadata import version; print(version("torch").split("+")[0])')
    echo "torch==$dev_torch" >"$tmp/dev.txt" # so pip never swaps the CPU build for a CUDA one
    pipq "$dev_venv/bin/python" -c "$tmp/dev.txt" "${dev_reqs[@]}"
fi

# --- fastai venv ---------------------------------------------------------------------------
fpy=$fastai_venv/bin/python
if [ ! -x "$fpy" ]; then
    mkdir -p "$(dirname "$fastai_venv")"
    python3 -m venv "$fastai_venv"
fi
printf '%s\n' "${fastai_torch[@]}" >"$tmp/fastai.txt"
if ! satisfied "$fpy" "${fastai_torch[@]}" "$fastai_req"; then
    pipq "$fpy" "${fastai_torch[@]}" # large; pip takes these wheels from local disk
    pipq "$fpy" -c "$tmp/fastai.txt" "$fastai_req"
fi
satisfied "$fpy" "${lrlab_light_deps[@]}" ||
    pipq "$fpy" -c "$tmp/fastai.txt" "${lrlab_light_deps[@]}"
# lrlab from this checkout, without deps (its torch requirement must not touch this venv).
lrlab_at=$("$fpy" -c 'import importlib.util as u; s = u.find_spec("lrlab"); print(s.origin if s else "")')
case "$lrlab_at" in
"$repo"/*) ;;
*) pipq "$fpy" --no-deps -e "$repo" ;;
esac

# --- versions ------------------------------------------------------------------------------
versions='
import platform, sys
from importlib.metadata import PackageNotFoundError, version
print(f"{sys.argv[1]} (python {platform.python_version()})")
for dist in sys.argv[2:]:
    try:
        print(f"  {dist:18s} {version(dist)}")
    except PackageNotFoundError:
        print(f"  {dist:18s} MISSING")
'
"$dev_venv/bin/python" -c "$versions" "dev venv $dev_venv" torch torch-lr-finder pytorch-lightning lrlab
"$fpy" -c "$versions" "fastai venv $fastai_venv" torch torchvision fastai fastcore lrlab
