"""graph2py: TensorFlow GraphDefs in, readable Keras 3 code out.

The pipeline is load -> graph -> passes -> patterns -> spec -> emit -> postprocess; each stage
hands plain data to the next, so every stage can be tested (and replaced) on its own.
"""

__version__ = "0.1.0"
