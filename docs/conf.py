"""Sphinx configuration: numpydoc API reference and a sphinx-gallery of examples/."""

import toeplitz_conv

project = "toeplitz_conv"
author = "toeplitz_conv developers"
release = version = toeplitz_conv.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
autodoc_typehints = "none"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": "/plot_",  # every example is named plot_*: all of them run
    "download_all_examples": False,
    "remove_config_comments": True,
}

html_theme = "alabaster"
html_static_path = []
