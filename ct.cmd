cd /work/suites-h1/cachetools/src/cachetools-8.0.1 && /work/suites-h1/cachetools/venv/bin/python -m pytest -p no:cacheprovider -q tests
