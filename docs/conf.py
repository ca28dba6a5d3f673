"""Sphinx configuration: numpydoc API reference and a sphinx-gallery of examples/."""

import toeplitz_conv

project = "toeplitz_conv"
author = "the toeplitz_conv developers"
copyright = f"2026, {author}"
release = version = toeplitz_conv.__version__
html_title = f"toeplitz_conv {version}"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax served from the built docs, so math renders offline
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
# wide enough for 88-column example code beside the sidebar, without a scroll bar
html_theme_options = {"page_width": "1220px", "sidebar_width": "240px"}
html_static_path = []
