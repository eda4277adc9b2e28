#!/usr/bin/env bash
# Create the virtual environment if needed, install Xinlian into it, and run
# the Home Credit demo on a local five-node consortium. Extra arguments go to
# the driver: see `scripts/demo.sh --help` (for example --lang en, --clients 40).
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin="${PYTHON:-python3.11}"
command -v "$python_bin" >/dev/null 2>&1 || python_bin=python3
if [ ! -x .venv/bin/python ]; then
    echo "正在创建虚拟环境 .venv / Creating the virtual environment .venv" >&2
    "$python_bin" -m venv .venv
fi
# The package is installed in editable mode, so only a change of
# pyproject.toml (its dependencies) needs a new install.
stamp=.venv/.xinlian-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "正在安装依赖 / Installing dependencies" >&2
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e .
    touch "$stamp"
fi
exec .venv/bin/python -m node.demo.driver "$@"
