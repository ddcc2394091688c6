"""Put `tests/no_tensorflow` first on PYTHONPATH to make `import tensorflow` fail, proving that
tests run without it:

    PYTHONPATH=tests/no_tensorflow python -m pytest tests/test_cases.py tests/test_passes.py -q
"""

raise ImportError("TensorFlow is blocked in this run")
