#!/bin/sh
# Accuracy benchmark (issue 4). Needs build/ (see bench/accuracy/run.py --help) and
# /usr/bin/python3 with numpy, scipy, sklearn and faiss.
exec /usr/bin/python3 "$(dirname "$0")/run.py" "$@"
