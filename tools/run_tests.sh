#!/usr/bin/env bash
# Set up what is missing (tools/setup_env.sh), then run the test suite. Extra arguments go to pytest.
#
#   bash tools/run_tests.sh            # everything (about 5 minutes on 2 cores)
#   bash tools/run_tests.sh tests/ops  # a part
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${VENV:-$REPO/.venv}
VENV="$VENV" bash "$REPO/tools/setup_env.sh"
cd "$REPO"
exec "$VENV/bin/python" -m pytest "$@"
